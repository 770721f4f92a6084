"""Standard Webhooks signatures (as Svix signs), plus a plain hex HMAC of the body.

``webhook-signature`` carries one ``v1,<base64>`` per active secret, space-separated, so a
receiver holding either the old or the new secret verifies during a rotation's grace period.
A subscription with ed25519 key pairs also gets one ``v1a,<base64>`` per active key (Standard
Webhooks' asymmetric scheme, the same signed content); receivers verify it with the public
key ``whpk_<base64>`` alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "PUBLIC_KEY_PREFIX",
    "decode_secret",
    "generate_signing_key",
    "load_signing_key",
    "sign_headers",
]

PUBLIC_KEY_PREFIX = "whpk_"


def generate_signing_key() -> tuple[str, str]:
    """A new ed25519 key pair: ``(base64 of the 32-byte private seed, "whpk_<base64>")``."""
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes_raw()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(seed).decode(), PUBLIC_KEY_PREFIX + base64.b64encode(public).decode()


def load_signing_key(seed: str) -> Ed25519PrivateKey:
    """The private key of a base64 seed made by :func:`generate_signing_key`."""
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed))


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret, as the standardwebhooks libraries read it."""
    raw = secret[len("whsec_") :] if secret.startswith("whsec_") else secret
    return base64.b64decode(raw)


def sign_headers(
    delivery_id: str,
    timestamp_s: int,
    body: bytes,
    keys: Sequence[bytes],
    signing_keys: Sequence[Ed25519PrivateKey] = (),
) -> dict[str, str]:
    """Signature headers for one attempt. ``keys`` are decoded secrets, newest first;
    ``signing_keys`` add ``v1a`` signatures after the ``v1`` ones."""
    signed = b"%s.%d.%s" % (delivery_id.encode(), timestamp_s, body)
    signatures = " ".join(
        [
            *(
                "v1," + base64.b64encode(hmac.digest(k, signed, hashlib.sha256)).decode()
                for k in keys
            ),
            *("v1a," + base64.b64encode(k.sign(signed)).decode() for k in signing_keys),
        ]
    )
    headers = {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp_s),
        "webhook-signature": signatures,
    }
    if keys:
        headers["x-webhook-signature"] = hmac.digest(keys[0], body, hashlib.sha256).hex()
    return headers
