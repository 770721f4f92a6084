"""Creating and revoking tokens: validate, then write to ``api-tokens`` and wait for the ack.

A token is either a workspace token (exactly one workspace) or an admin token (every
workspace). Workspace names are 1-200 characters of ``A-Z a-z 0-9 . _ : @ + -``, starting
with a letter or digit, so they fit in a URL path segment unchanged.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace

from confluent_kafka import Producer

from worker.codec.avro import AvroCodec
from worker.config import Settings
from worker.errors import InvalidInput, NotFoundError
from worker.kafka.topics import Topics
from worker.kafka.writes import produce_acked
from worker.tokens.format import generate_secret, make_token, new_token_id, token_hash
from worker.tokens.model import TokenRecord, encode_token
from worker.tokens.registry import TokenRegistry

__all__ = [
    "InvalidToken",
    "TokenWriter",
    "UnknownToken",
    "check_request",
    "validate_workspace",
]

_WORKSPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,199}")
_MAX_NAME = 200


class InvalidToken(InvalidInput):
    """The token request breaks a rule; the message says which, in one line."""


class UnknownToken(NotFoundError):
    """No token has this id."""


def validate_workspace(workspace: str) -> str:
    if not _WORKSPACE.fullmatch(workspace):
        raise InvalidToken(
            f"invalid workspace {workspace[:80]!r}: 1-200 characters of letters, digits "
            "and . _ : @ + -, starting with a letter or digit"
        )
    return workspace


def check_request(*, workspace: str | None, admin: bool, name: str) -> None:
    """Exactly one of a valid workspace or admin; a short printable name."""
    if admin == (workspace is not None):
        raise InvalidToken("a token is either for one workspace or admin: give exactly one")
    if workspace is not None:
        validate_workspace(workspace)
    if len(name) > _MAX_NAME or not name.isprintable():
        raise InvalidToken(f"invalid name: at most {_MAX_NAME} printable characters")


class TokenWriter:
    """Writes token records; ``revoke`` finds the current record in ``registry``."""

    def __init__(
        self, settings: Settings, producer: Producer, avro: AvroCodec, registry: TokenRegistry
    ) -> None:
        self._producer = producer
        self._avro = avro
        self._registry = registry
        self._topic = Topics.from_settings(settings).api_tokens

    def create(
        self, *, workspace: str | None, admin: bool, name: str = ""
    ) -> tuple[TokenRecord, str]:
        """Write a new token; returns its record and the token itself (the only time the
        token exists outside the caller: only its hash is stored)."""
        check_request(workspace=workspace, admin=admin, name=name)
        token_id = new_token_id()
        token = make_token(token_id, generate_secret())
        record = TokenRecord(
            id=token_id,
            hash=token_hash(token),
            workspace=workspace,
            admin=admin,
            name=name,
            created_ms=_now_ms(),
        )
        self._write(record)
        return record, token

    def revoke(self, token_id: str) -> TokenRecord:
        """Mark the token revoked (kept, with ``revoked_ms``, so lists still show it).
        Revoking a revoked token changes nothing. Raises :class:`UnknownToken`."""
        current = self._registry.get(token_id)
        if current is None:
            raise UnknownToken(f"unknown token {token_id[:80]}")
        if current.revoked:
            return current
        revoked = replace(current, revoked_ms=_now_ms())
        self._write(revoked)
        return revoked

    def _write(self, record: TokenRecord) -> None:
        produce_acked(
            self._producer, self._topic, encode_token(self._avro, record), record.id.encode()
        )


def _now_ms() -> int:
    return int(time.time() * 1000)
