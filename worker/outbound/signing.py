"""Standard Webhooks signatures (as Svix signs), plus a plain hex HMAC of the body.

``webhook-signature`` carries one ``v1,<base64>`` per active secret, space-separated, so a
receiver holding either the old or the new secret verifies during a rotation's grace period.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

__all__ = ["decode_secret", "sign_headers"]


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret, as the standardwebhooks libraries read it."""
    raw = secret[len("whsec_") :] if secret.startswith("whsec_") else secret
    return base64.b64decode(raw)


def sign_headers(
    delivery_id: str, timestamp_s: int, body: bytes, keys: Sequence[bytes]
) -> dict[str, str]:
    """Signature headers for one attempt. ``keys`` are decoded secrets, newest first."""
    signed = b"%s.%d.%s" % (delivery_id.encode(), timestamp_s, body)
    signatures = " ".join(
        "v1," + base64.b64encode(hmac.digest(key, signed, hashlib.sha256)).decode() for key in keys
    )
    headers = {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp_s),
        "webhook-signature": signatures,
    }
    if keys:
        headers["x-webhook-signature"] = hmac.digest(keys[0], body, hashlib.sha256).hex()
    return headers
