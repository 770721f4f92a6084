"""Checking an incoming request's signature as its source says, in constant time.

``standard-webhooks``: ``webhook-id``, ``webhook-timestamp`` (within 5 minutes of now, either
way) and ``webhook-signature`` (space-separated ``v1,<base64>`` HMAC-SHA256 of
``{id}.{timestamp}.{body}``; any one matching any of the source's current secrets passes).
``hmac-sha256``: ``x-webhook-signature`` is the hex HMAC-SHA256 of the raw body. ``none``:
nothing is checked. The HMAC key of a ``whsec_`` secret is its base64-decoded bytes.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
from collections.abc import Mapping, Sequence

from worker.errors import InvalidInput
from worker.outbound.signing import decode_secret
from worker.sources.model import Verify

__all__ = ["TOLERANCE_S", "Refused", "verify_request"]

TOLERANCE_S = 300
_MAX_SIGNATURES = 10


class Refused(InvalidInput):
    """The request does not verify; the message says why (safe to show the sender)."""


def verify_request(
    method: Verify,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    now_s: float,
) -> None:
    """Raise :class:`Refused` unless the request verifies. ``headers`` are lowercased."""
    if method is Verify.NONE:
        return
    keys = [_keyed(s) for s in secrets]
    if method is Verify.HMAC_SHA256:
        given = headers.get("x-webhook-signature", "").strip().lower()
        if not given:
            raise Refused("missing x-webhook-signature")
        for key in keys:
            if hmac.compare_digest(_mac(key, body).hex(), given):
                return
        raise Refused("no matching signature")
    _standard(headers, body, keys, now_s)


def _standard(headers: Mapping[str, str], body: bytes, keys: list[hmac.HMAC], now_s: float) -> None:
    webhook_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    signature = headers.get("webhook-signature", "")
    if not webhook_id or not stamp or not signature:
        raise Refused("missing webhook-id, webhook-timestamp or webhook-signature")
    if len(webhook_id) > 256:
        raise Refused("webhook-id is longer than 256 characters")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise Refused("malformed webhook-timestamp") from None
    if abs(now_s - timestamp) > TOLERANCE_S:
        raise Refused("webhook-timestamp is more than 5 minutes away from now")
    signed = b"%s.%d.%s" % (webhook_id.encode(), timestamp, body)
    expected = [_mac(key, signed) for key in keys]
    for part in signature.split()[:_MAX_SIGNATURES]:
        version, _, value = part.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if any(hmac.compare_digest(given, e) for e in expected):
            return
    raise Refused("no matching signature")


@functools.lru_cache(maxsize=4096)
def _keyed(secret: str) -> hmac.HMAC:
    """A keyed HMAC-SHA256 to copy per request (cheaper than keying again, and unlike the
    one-shot ``hmac.digest`` it keeps the GIL for small inputs: no wait to get it back)."""
    try:
        key = decode_secret(secret)
    except (binascii.Error, ValueError):
        key = secret.encode()
    return hmac.new(key, digestmod=hashlib.sha256)


def _mac(keyed: hmac.HMAC, data: bytes) -> bytes:
    mac = keyed.copy()
    mac.update(data)
    return mac.digest()
