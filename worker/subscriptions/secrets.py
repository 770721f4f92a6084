"""Signing secrets: generation, and encryption at rest with AES-256-GCM (``cryptography``)."""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import replace

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from worker.errors import BackendError
from worker.subscriptions.model import SecretEntry, Subscription

__all__ = ["SecretBox", "SecretsError", "generate_secret", "open_subscription", "seal_subscription"]

SEALED_PREFIX = "enc:v1:"


class SecretsError(BackendError):
    """Secrets cannot be opened (no key, wrong key, tampered)."""


def generate_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


class SecretBox:
    """Seals and opens secret strings with WEBHOOK_SECRETS_KEY (base64 of 32 bytes)."""

    def __init__(self, key: str) -> None:
        try:
            raw = base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ValueError(
                "WEBHOOK_SECRETS_KEY must be base64 of 32 random bytes "
                "(generate one with: openssl rand -base64 32)"
            )
        self._aead = AESGCM(raw)

    @staticmethod
    def generate_key() -> str:
        return base64.b64encode(os.urandom(32)).decode()

    def seal(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = nonce + self._aead.encrypt(nonce, plaintext.encode(), b"webhook-worker")
        return SEALED_PREFIX + base64.b64encode(sealed).decode()

    def open(self, sealed: str) -> str:
        try:
            raw = base64.b64decode(sealed[len(SEALED_PREFIX) :])
            return self._aead.decrypt(raw[:12], raw[12:], b"webhook-worker").decode()
        except (InvalidTag, ValueError, binascii.Error):
            raise SecretsError(
                "a subscription secret cannot be decrypted: wrong "
                "WEBHOOK_SECRETS_KEY or tampered record"
            ) from None


def seal_subscription(sub: Subscription, box: SecretBox | None) -> Subscription:
    """``sub`` with its secrets, private signing keys and client key encrypted (as it is
    written)."""
    if box is None:
        return sub

    def seal(text: str) -> str:
        return text if text.startswith(SEALED_PREFIX) else box.seal(text)

    return replace(
        sub,
        secrets=tuple(SecretEntry(seal(s.secret), s.expires_ms) for s in sub.secrets),
        signing_keys=tuple(replace(k, private_key=seal(k.private_key)) for k in sub.signing_keys),
        client_key=seal(sub.client_key) if sub.client_key is not None else None,
    )


def open_subscription(sub: Subscription, box: SecretBox | None) -> Subscription:
    """``sub`` with its secrets, private signing keys and client key decrypted (as it is
    used)."""
    sealed = [s.secret for s in sub.secrets] + [k.private_key for k in sub.signing_keys]
    if sub.client_key is not None:
        sealed.append(sub.client_key)
    if not any(text.startswith(SEALED_PREFIX) for text in sealed):
        return sub
    if box is None:
        raise SecretsError(
            f"subscription {sub.id} has encrypted secrets but WEBHOOK_SECRETS_KEY is not set"
        )

    def unseal(text: str) -> str:
        return box.open(text) if text.startswith(SEALED_PREFIX) else text

    return replace(
        sub,
        secrets=tuple(SecretEntry(unseal(s.secret), s.expires_ms) for s in sub.secrets),
        signing_keys=tuple(replace(k, private_key=unseal(k.private_key)) for k in sub.signing_keys),
        client_key=unseal(sub.client_key) if sub.client_key is not None else None,
    )
