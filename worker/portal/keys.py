"""The portal's signing keys: one master key every replica shares, split with HKDF into one
subkey per use (links, session cookies, CSRF tokens) so that no signature of one kind passes
for another."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from worker.config import Settings

__all__ = ["PortalKeys", "b64d", "b64e", "sign", "verify"]

log = logging.getLogger(__name__)
_process_key: list[bytes] = []  # the random key of this process, made once


def _derive(master: bytes, info: str) -> bytes:
    kdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"webhook-worker portal", info=info.encode()
    )
    return kdf.derive(master)


@dataclass(frozen=True, slots=True)
class PortalKeys:
    link: bytes
    session: bytes
    csrf: bytes
    shared: bool  # False: a key of this process only (links work on this replica only)

    @classmethod
    def from_master(cls, master: bytes, shared: bool = True) -> PortalKeys:
        return cls(
            _derive(master, "portal-link v1"),
            _derive(master, "portal-session v1"),
            _derive(master, "portal-csrf v1"),
            shared,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> PortalKeys:
        """``WEBHOOK_PORTAL_KEY``, else derived from ``WEBHOOK_SECRETS_KEY``, else a random key
        of this process (said once in the log: links then work on this replica only)."""
        if settings.portal_key:
            return cls.from_master(b"portal-key:" + settings.portal_key.encode())
        if settings.secrets_key:
            return cls.from_master(b"secrets-key:" + settings.secrets_key.encode())
        if not _process_key:
            log.warning(
                "neither WEBHOOK_PORTAL_KEY nor WEBHOOK_SECRETS_KEY is set: portal links and "
                "sessions work on this replica only, until it restarts"
            )
            _process_key.append(secrets.token_bytes(32))
        return cls.from_master(_process_key[0], shared=False)


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    """Raises ValueError for anything that is not unpadded base64url."""
    if not text or len(text) > 4096 or not text.replace("-", "").replace("_", "").isalnum():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, payload: bytes) -> str:
    """``<payload>.<mac>``, both base64url."""
    mac = hmac.new(key, payload, hashlib.sha256).digest()
    return f"{b64e(payload)}.{b64e(mac)}"


def verify(key: bytes, token: str) -> bytes | None:
    """The payload of a token :func:`sign` made with ``key``, or None (forged, malformed)."""
    body, dot, mac = token.partition(".")
    if not dot:
        return None
    try:
        payload, given = b64d(body), b64d(mac)
    except ValueError:
        return None
    wanted = hmac.new(key, payload, hashlib.sha256).digest()
    return payload if hmac.compare_digest(wanted, given) else None
