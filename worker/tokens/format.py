"""The token string: ``wwt_<id>_<secret>``, generated, parsed and hashed.

``id`` is ``tok`` followed by 20 lowercase hex characters (80 random bits), so it never holds
an underscore; the secret is 32 random bytes in base64url without padding (43 characters of
``A-Z a-z 0-9 - _``), so it may. A token therefore splits at the first underscore after the
``wwt_`` prefix: what comes before is the id, everything after is the secret. Only the hex
SHA-256 of the whole string is ever stored; :func:`hash_matches` compares in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

__all__ = [
    "PREFIX",
    "generate_secret",
    "hash_matches",
    "make_token",
    "new_token_id",
    "parse_token",
    "token_hash",
]

PREFIX = "wwt_"
SECRET_BYTES = 32
_ID = re.compile(r"tok[0-9a-f]{20}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{43,128}")
_MAX_TOKEN_CHARS = 4 + 23 + 1 + 128


def new_token_id() -> str:
    """``tok`` + 20 random hex characters: no underscore, so the token splits unambiguously."""
    return "tok" + secrets.token_hex(10)


def generate_secret() -> str:
    """32 random bytes, base64url without padding (43 characters, may hold ``_`` and ``-``)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=").decode()


def make_token(token_id: str, secret: str) -> str:
    """``wwt_<id>_<secret>``; raises ``ValueError`` when either part is malformed."""
    token = f"{PREFIX}{token_id}_{secret}"
    if parse_token(token) != (token_id, secret):
        raise ValueError("malformed token id or secret")
    return token


def parse_token(token: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed token, else None (never raises)."""
    if len(token) > _MAX_TOKEN_CHARS or not token.startswith(PREFIX):
        return None
    token_id, sep, secret = token[len(PREFIX) :].partition("_")
    if not sep or not _ID.fullmatch(token_id) or not _SECRET.fullmatch(secret):
        return None
    return token_id, secret


def token_hash(token: str) -> str:
    """Hex SHA-256 of the whole token string, as stored in the ``api-tokens`` record."""
    return hashlib.sha256(token.encode()).hexdigest()


def hash_matches(token: str, stored_hash: str) -> bool:
    """Whether ``token`` hashes to ``stored_hash``, compared in constant time."""
    return hmac.compare_digest(token_hash(token).encode(), stored_hash.encode())
