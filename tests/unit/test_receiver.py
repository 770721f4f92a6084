"""The test receiver itself: real HTTP, real Standard Webhooks verification, behaviours."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.receiver import Receiver, Reply, always, fail_first, random_failures

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OTHER = "whsec_" + base64.b64encode(b"fedcba9876543210fedcba9876543210").decode()


def signed(secret: str, body: str, msg_id: str = "msg_1") -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
        "content-type": "application/json",
    }


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def test_correct_signature_is_verified_and_recorded(receiver: Receiver) -> None:
    url = receiver.endpoint("a", SECRET)
    assert url == f"http://127.0.0.1:{receiver.port}/a"
    body = '{"id":"evt_1","event":"contact.created"}'
    before = time.time()
    response = httpx.post(url, content=body, headers=signed(SECRET, body))
    assert (response.status_code, response.content) == (200, b"ok")
    [got] = receiver.wait_for("a", 1, timeout=5)
    assert got.verified and got.error is None
    assert got.json == {"id": "evt_1", "event": "contact.created"}
    assert got.body == body.encode()
    assert got.headers["webhook-id"] == "msg_1"
    assert got.status_sent == 200 and got.path == "a"
    assert before <= got.wall <= time.time()


def test_wrong_signature_is_recorded_unverified(receiver: Receiver) -> None:
    url = receiver.endpoint("a", SECRET)
    body = '{"id":"evt_2"}'
    httpx.post(url, content=body, headers=signed(OTHER, body))
    httpx.post(url, content=body, headers={"content-type": "application/json"})
    first, second = receiver.wait_for("a", 2, timeout=5)
    assert not first.verified and first.error
    assert not second.verified and second.error


def test_behaviours_see_the_request_number(receiver: Receiver) -> None:
    url = receiver.endpoint("flaky", SECRET, fail_first(2, status=503))
    statuses = [httpx.post(url, content="{}").status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    assert [r.status_sent for r in receiver.received("flaky")] == statuses
    gone = receiver.endpoint("gone", SECRET, always(410))
    assert httpx.post(gone, content="{}").status_code == 410


def test_random_failures_are_reproducible() -> None:
    first, second = random_failures(0.5, seed=7), random_failures(0.5, seed=7)
    a = [first(n, b"").status for n in range(1, 50)]
    assert a == [second(n, b"").status for n in range(1, 50)]
    assert {200, 503} == set(a)


def test_reply_headers_delay_and_reset(receiver: Receiver) -> None:
    slow = receiver.endpoint(
        "slow", SECRET, lambda n, body: Reply(429, delay_s=0.2, headers={"retry-after": "3"})
    )
    started = time.monotonic()
    response = httpx.post(slow, content="{}")
    assert time.monotonic() - started >= 0.2
    assert (response.status_code, response.headers["retry-after"]) == (429, "3")
    reset = receiver.endpoint("reset", SECRET, lambda n, body: Reply(reset=True))
    with pytest.raises(httpx.TransportError):
        httpx.post(reset, content="{}")


def test_hanging_endpoint_times_out_and_shuts_down_quickly() -> None:
    started = time.monotonic()
    with Receiver() as receiver:
        url = receiver.endpoint("hang", SECRET, lambda n, body: Reply(hang=True))
        with pytest.raises(httpx.TimeoutException):
            httpx.post(url, content="{}", timeout=0.3)
    assert time.monotonic() - started < 5


def test_unknown_path_is_404_and_wait_for_reports_what_arrived(receiver: Receiver) -> None:
    url = receiver.endpoint("a", SECRET, always(500))
    assert httpx.post(url.replace("/a", "/nope"), content="{}").status_code == 404
    httpx.post(url, content='{"x":1}')
    with pytest.raises(AssertionError, match=r"a: waited 0.2s for 2 requests, got 1: \[\(500"):
        receiver.wait_for("a", 2, timeout=0.2)
