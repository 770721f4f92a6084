"""The source record (one per key on ``sources``), its Avro form, and its JSON view."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from worker.codec.avro import AvroCodec
from worker.tokens.model import rfc3339

__all__ = [
    "SCHEMA",
    "Source",
    "Verify",
    "decode_source",
    "encode_source",
    "new_source_id",
    "source_json",
]

SCHEMA = "Source"


class Verify(StrEnum):
    STANDARD_WEBHOOKS = "standard-webhooks"
    HMAC_SHA256 = "hmac-sha256"
    NONE = "none"


def new_source_id() -> str:
    """``src_`` + 26 lowercase base32 characters: 130 random bits, safe in a URL path."""
    return "src_" + base64.b32encode(secrets.token_bytes(17)).decode().lower()[:26]


@dataclass(frozen=True, slots=True)
class Source:
    """A source as used (secrets in plaintext; sealed only in the topic)."""

    id: str
    workspace: str
    name: str
    topic: str
    verify: Verify
    secret: str = field(repr=False)
    created_ms: int
    updated_ms: int
    old_secret: str | None = field(default=None, repr=False)
    old_secret_expires_ms: int | None = None
    changed_by: str | None = None

    def secrets_at(self, now_ms: int) -> list[str]:
        """The secrets a request received at ``now_ms`` may be signed with (newest first)."""
        found = [self.secret]
        if self.old_secret and (self.old_secret_expires_ms or 0) > now_ms:
            found.append(self.old_secret)
        return found

    @property
    def path(self) -> str:
        return f"/in/{self.id}"


def source_json(
    source: Source, public_url: str | None, secret: str | None = None
) -> dict[str, Any]:
    """A source as the CLI and API show it: never a secret unless ``secret`` is given."""
    document: dict[str, Any] = {
        "id": source.id,
        "workspace": source.workspace,
        "name": source.name,
        "topic": source.topic,
        "verify": source.verify.value,
        "path": source.path,
        "url": public_url.rstrip("/") + source.path if public_url else None,
        "old_secret_expires_at": (
            rfc3339(source.old_secret_expires_ms) if source.old_secret_expires_ms else None
        ),
        "created_at": rfc3339(source.created_ms),
        "updated_at": rfc3339(source.updated_ms),
    }
    if secret is not None:
        document["secret"] = secret
    return document


def encode_source(avro: AvroCodec, source: Source) -> bytes:
    """The Avro record of an already sealed ``source``."""
    return avro.encode(
        SCHEMA,
        {
            "id": source.id,
            "workspace": source.workspace,
            "name": source.name,
            "topic": source.topic,
            "verify": source.verify.value,
            "secret": source.secret,
            "old_secret": source.old_secret,
            "old_secret_expires_ms": source.old_secret_expires_ms,
            "created_ms": source.created_ms,
            "updated_ms": source.updated_ms,
            "changed_by": source.changed_by,
        },
    )


def decode_source(avro: AvroCodec, data: bytes | None) -> Source:
    """Raises ``CodecError`` for anything that is not a ``Source`` record, ``ValueError`` for
    an unknown verification."""
    raw = avro.decode_as(SCHEMA, data)
    return Source(
        id=raw["id"],
        workspace=raw["workspace"],
        name=raw["name"],
        topic=raw["topic"],
        verify=Verify(raw["verify"]),
        secret=raw["secret"],
        old_secret=raw["old_secret"],
        old_secret_expires_ms=raw["old_secret_expires_ms"],
        created_ms=raw["created_ms"],
        updated_ms=raw["updated_ms"],
        changed_by=raw["changed_by"],
    )
