"""The token record (one per key on ``api-tokens``), its Avro form, and the principal a
valid token authenticates as."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from worker.codec.avro import AvroCodec

__all__ = ["SCHEMA", "Principal", "TokenRecord", "decode_token", "encode_token"]

SCHEMA = "ApiToken"


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A token as stored: its hash, never the token. ``workspace`` is None for an admin."""

    id: str
    hash: str
    workspace: str | None
    admin: bool
    name: str
    created_ms: int
    revoked_ms: int | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_ms is not None

    def public(self) -> dict[str, Any]:
        """The JSON view for lists: no hash, no token. Times are RFC 3339."""
        return {
            "id": self.id,
            "workspace": self.workspace,
            "admin": self.admin,
            "name": self.name,
            "created_at": rfc3339(self.created_ms),
            "revoked_at": None if self.revoked_ms is None else rfc3339(self.revoked_ms),
        }


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: one workspace, or every workspace for an admin token."""

    token_id: str
    workspace: str | None
    admin: bool
    name: str

    def can_access(self, workspace: str) -> bool:
        return self.admin or workspace == self.workspace


def encode_token(avro: AvroCodec, record: TokenRecord) -> bytes:
    return avro.encode(
        SCHEMA,
        {
            "id": record.id,
            "hash": record.hash,
            "workspace": record.workspace,
            "admin": record.admin,
            "name": record.name,
            "created_ms": record.created_ms,
            "revoked_ms": record.revoked_ms,
        },
    )


def decode_token(avro: AvroCodec, data: bytes | None) -> TokenRecord:
    """Raises ``CodecError`` for anything that is not an ``ApiToken`` record."""
    raw = avro.decode_as(SCHEMA, data)
    return TokenRecord(
        id=raw["id"],
        hash=raw["hash"],
        workspace=raw["workspace"],
        admin=raw["admin"],
        name=raw["name"],
        created_ms=raw["created_ms"],
        revoked_ms=raw["revoked_ms"],
    )


def rfc3339(ms: int) -> str:
    """``2024-05-01T12:00:00.123Z``."""
    stamp = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")
