"""Signature checks of incoming requests against the reference library's signatures."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.incoming import hex_signature
from worker.sources.model import Verify
from worker.sources.verify import Refused, verify_request
from worker.subscriptions.secrets import generate_secret

SECRET = generate_secret()
OLD = generate_secret()
BODY = b'{"a": 1}'


def _headers(
    secret: str, body: bytes = BODY, age_s: float = 0, msg: str = "msg_1"
) -> dict[str, str]:
    when = datetime.now(UTC) - timedelta(seconds=age_s)
    return {
        "webhook-id": msg,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg, when, body.decode()),
    }


def _check(method: Verify, headers: dict[str, str], body: bytes = BODY) -> None:
    verify_request(method, headers, body, [SECRET, OLD], time.time())


def test_standard_webhooks_accepts_either_current_secret_and_any_listed_signature() -> None:
    _check(Verify.STANDARD_WEBHOOKS, _headers(SECRET))
    _check(Verify.STANDARD_WEBHOOKS, _headers(OLD))
    several = _headers(SECRET)
    several["webhook-signature"] = "v1,AAAA v1a,BBBB " + several["webhook-signature"]
    _check(Verify.STANDARD_WEBHOOKS, several)
    _check(Verify.STANDARD_WEBHOOKS, _headers(SECRET, age_s=290))


@pytest.mark.parametrize(
    "headers",
    # Made when the test runs, not when it is collected: a timestamp 310 s ahead made at
    # collection is within the tolerance once the suite has run for ten seconds.
    [
        lambda: {},
        lambda: {"webhook-id": "msg_1", "webhook-timestamp": "1"},
        lambda: _headers(generate_secret()),
        lambda: _headers(SECRET, age_s=310),
        lambda: _headers(SECRET, age_s=-310),
        lambda: {**_headers(SECRET), "webhook-timestamp": "soon"},
        lambda: {**_headers(SECRET), "webhook-id": "msg_2"},
        lambda: {**_headers(SECRET), "webhook-signature": "v1,!!!notbase64"},
    ],
)
def test_standard_webhooks_refusals(headers: Callable[[], dict[str, str]]) -> None:
    with pytest.raises(Refused):
        _check(Verify.STANDARD_WEBHOOKS, headers())


def test_the_body_is_signed_byte_for_byte() -> None:
    with pytest.raises(Refused):
        _check(Verify.STANDARD_WEBHOOKS, _headers(SECRET), BODY + b"\n")


def test_hmac_sha256_and_none() -> None:
    _check(Verify.HMAC_SHA256, {"x-webhook-signature": hex_signature(SECRET, BODY)})
    _check(Verify.HMAC_SHA256, {"x-webhook-signature": hex_signature(SECRET, BODY).upper()})
    for bad in ({}, {"x-webhook-signature": hex_signature(generate_secret(), BODY)}):
        with pytest.raises(Refused):
            _check(Verify.HMAC_SHA256, bad)
    _check(Verify.NONE, {})
