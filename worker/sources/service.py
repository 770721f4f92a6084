"""The source service: every change to a source, whoever asks (the CLI and the API).

Rules are written once here: a workspace and a name, a topic that is neither the worker's own
nor one of its inputs (created when missing), a verification method, and secrets that are
shown only by ``create`` and ``roll_secret``. Writes go to the compacted ``sources`` topic and
wait for the broker's acknowledgement; the table then holds the caller's own write.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from confluent_kafka import Producer

from worker.codec.avro import AvroCodec
from worker.config import Settings
from worker.errors import InvalidInput, NotFoundError
from worker.kafka.topics import Topics
from worker.kafka.writes import produce_acked
from worker.sources.landing import InvalidTopic, check_topic
from worker.sources.model import Source, Verify, encode_source, new_source_id
from worker.sources.table import SourceTable, seal_secrets
from worker.subscriptions.secrets import SecretBox, generate_secret
from worker.tokens.writer import InvalidToken, validate_workspace

__all__ = ["InvalidSource", "SourceNotFound", "SourceService"]

MAX_NAME = 200
MAX_GRACE_MS = 7 * 86_400_000


class InvalidSource(InvalidInput):
    """The request breaks a rule; the message says which, in one line."""


class SourceNotFound(NotFoundError):
    """No such source, or one of another workspace (the two look the same)."""


class SourceService:
    """Create, read, delete and re-key sources. ``ensure_topic(name)`` creates a missing
    destination topic (the composition root gives it an admin client)."""

    def __init__(
        self,
        settings: Settings,
        *,
        table: SourceTable,
        producer: Producer,
        avro: AvroCodec,
        box: SecretBox | None,
        ensure_topic: Callable[[str], object],
    ) -> None:
        self._settings = settings
        self._table = table
        self._producer = producer
        self._avro = avro
        self._box = box
        self._ensure_topic = ensure_topic
        self._topic = Topics.from_settings(settings).sources

    def get(self, source_id: str, workspace: str | None = None) -> Source:
        source = self._table.get(source_id)
        if source is None or (workspace is not None and source.workspace != workspace):
            raise SourceNotFound(f"unknown source {source_id[:100]}")
        return source

    def list(self, workspace: str | None = None) -> list[Source]:
        return self._table.list(workspace)

    def create(
        self, workspace: str, name: str, topic: str, verify: str, *, actor: str
    ) -> tuple[Source, str]:
        """Validate, create the topic when missing, write; returns the source and its secret
        (the only time it is shown)."""
        try:
            validate_workspace(workspace)
        except InvalidToken as exc:
            raise InvalidSource(str(exc)) from None
        if not name.strip() or len(name) > MAX_NAME or not name.isprintable():
            raise InvalidSource(f"name: 1-{MAX_NAME} printable characters")
        try:
            method = Verify(verify)
        except ValueError:
            choices = ", ".join(v.value for v in Verify)
            raise InvalidSource(f"verify: expected one of {choices}, got {verify!r}") from None
        try:
            check_topic(topic, self._settings)
            self._ensure_topic(topic)
        except InvalidTopic as exc:
            raise InvalidSource(str(exc)) from None
        now = _now_ms()
        secret = generate_secret()
        source = Source(
            id=new_source_id(),
            workspace=workspace,
            name=name,
            topic=topic,
            verify=method,
            secret=secret,
            created_ms=now,
            updated_ms=now,
            changed_by=actor,
        )
        self._save(source)
        return source, secret

    def delete(self, source_id: str, *, workspace: str | None = None) -> None:
        """Remove the source (its topic and the records in it stay)."""
        source = self.get(source_id, workspace)
        produce_acked(self._producer, self._topic, None, source.id.encode())
        self._table.remove(source.id)

    def roll_secret(
        self, source_id: str, grace_ms: int, *, actor: str, workspace: str | None = None
    ) -> tuple[Source, str]:
        """A new secret; the current one is still accepted for ``grace_ms`` (at most 7 days).
        Returns the new secret, shown once."""
        if not 0 <= grace_ms <= MAX_GRACE_MS:
            raise InvalidSource("grace: between 0 and 7d")
        source = self.get(source_id, workspace)
        secret = generate_secret()
        now = _now_ms()
        rolled = replace(
            source,
            secret=secret,
            old_secret=source.secret if grace_ms else None,
            old_secret_expires_ms=now + grace_ms if grace_ms else None,
            updated_ms=now,
            changed_by=actor,
        )
        self._save(rolled)
        return rolled, secret

    def _save(self, source: Source) -> None:
        sealed = seal_secrets(source, self._box)
        produce_acked(
            self._producer, self._topic, encode_source(self._avro, sealed), source.id.encode()
        )
        self._table.upsert(source)


def _now_ms() -> int:
    return int(time.time() * 1000)
