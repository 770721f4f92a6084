"""The sources every API replica knows: the compacted ``sources`` topic, followed whole.

Like the token registry: a :class:`CompactedFollower` applies every record (last value per
id wins, a tombstone deletes) and keeps following, so a source created or deleted through any
replica or the CLI reaches every replica within a poll interval. Secrets are opened (with
``WEBHOOK_SECRETS_KEY``) as records are applied, so a request never waits for a decryption.
"""

from __future__ import annotations

import builtins
import logging
import threading
from dataclasses import replace

from worker.codec.avro import AvroCodec
from worker.config import Settings
from worker.errors import BackendError
from worker.kafka.clients import make_consumer
from worker.kafka.compacted import CompactedFollower, FollowedTable
from worker.kafka.topics import Topics
from worker.sources.model import Source, decode_source
from worker.subscriptions.secrets import SEALED_PREFIX, SecretBox, SecretsError

__all__ = ["SourceTable", "SourceTableError", "open_secrets", "open_sources", "seal_secrets"]

log = logging.getLogger(__name__)


class SourceTableError(BackendError):
    """The sources topic cannot be followed (missing topic, broker error)."""


def seal_secrets(source: Source, box: SecretBox | None) -> Source:
    """``source`` with its secrets encrypted (as it is written)."""
    if box is None:
        return source

    def seal(text: str) -> str:
        return text if text.startswith(SEALED_PREFIX) else box.seal(text)

    return replace(
        source,
        secret=seal(source.secret),
        old_secret=seal(source.old_secret) if source.old_secret else None,
    )


def open_secrets(source: Source, box: SecretBox | None) -> Source:
    """``source`` with its secrets decrypted (as it is used); SecretsError without the key."""
    sealed = [s for s in (source.secret, source.old_secret) if s and s.startswith(SEALED_PREFIX)]
    if not sealed:
        return source
    if box is None:
        raise SecretsError(
            f"source {source.id} has encrypted secrets but WEBHOOK_SECRETS_KEY is not set"
        )
    return replace(
        source,
        secret=box.open(source.secret)
        if source.secret.startswith(SEALED_PREFIX)
        else source.secret,
        old_secret=(
            box.open(source.old_secret)
            if source.old_secret and source.old_secret.startswith(SEALED_PREFIX)
            else source.old_secret
        ),
    )


class SourceTable(FollowedTable):
    """Sources by id, applied by the follower thread; every read is thread-safe."""

    failure = SourceTableError

    def __init__(self, avro: AvroCodec, box: SecretBox | None) -> None:
        super().__init__()
        self._avro = avro
        self._box = box
        self._lock = threading.Lock()
        self._sources: dict[str, Source] = {}
        self.skipped = 0

    def follow(self, follower: CompactedFollower) -> None:
        self._start(follower)

    def get(self, source_id: str) -> Source | None:
        return self._sources.get(source_id)  # a dict read is atomic

    def list(self, workspace: str | None = None) -> builtins.list[Source]:
        """Oldest first (then by id): a stable order for pages."""
        with self._lock:
            found = [
                s for s in self._sources.values() if workspace is None or s.workspace == workspace
            ]
        return sorted(found, key=lambda s: (s.created_ms, s.id))

    def upsert(self, source: Source) -> None:
        """Apply a write of ours at once (the caller reads its own write)."""
        with self._lock:
            self._sources[source.id] = source

    def remove(self, source_id: str) -> None:
        with self._lock:
            self._sources.pop(source_id, None)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Apply one record of the topic (``value`` None: a tombstone)."""
        if key is None:
            self.skipped += 1
            return
        source_id = key.decode("utf-8", "replace")
        if value is None:
            self.remove(source_id)
            return
        try:
            source = open_secrets(decode_source(self._avro, value), self._box)
        except Exception as exc:
            self.skipped += 1
            log.error("skipping unreadable source record %r: %s", key[:80], exc)
            return
        if source.id != source_id:
            self.skipped += 1
            log.error("skipping source record keyed %r holding id %r", key[:80], source.id)
            return
        self.upsert(source)


def open_sources(settings: Settings, avro: AvroCodec, box: SecretBox | None) -> SourceTable:
    """Start following ``sources`` (call ``wait_caught_up`` before trusting it)."""
    table = SourceTable(avro, box)
    consumer = make_consumer(settings, None, **{"enable.partition.eof": "true"})
    table.follow(
        CompactedFollower(consumer, Topics.from_settings(settings).sources, table.apply, "sources")
    )
    return table
