"""Following ``api-tokens`` and answering "who is this bearer?".

Every API replica runs one :class:`TokenRegistry`: it follows the compacted topic from the
beginning (a :class:`CompactedFollower`), keeps the last record per token id, and keeps
following, so a revocation written anywhere reaches every replica within a poll interval.
``authenticate`` looks the token up by id and compares its SHA-256 in constant time.
It fails closed: a registry whose follower died authenticates nobody.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Callable

from confluent_kafka import Consumer

from worker.codec.avro import AvroCodec
from worker.config import Settings
from worker.errors import BackendError
from worker.kafka.clients import make_consumer
from worker.kafka.compacted import CompactedFollower, FollowedTable
from worker.kafka.topics import Topics
from worker.tokens.format import hash_matches, parse_token, token_hash
from worker.tokens.model import Principal, TokenRecord, decode_token

__all__ = ["RevokeListener", "TokenRegistry", "TokenRegistryError", "open_registry"]

log = logging.getLogger(__name__)

RevokeListener = Callable[[str], None]
# Compared against when the id is unknown, so a miss costs what a hit costs.
_NO_HASH = token_hash("wwt_unknown")


class TokenRegistryError(BackendError):
    """The api-tokens topic cannot be followed (missing topic, broker error)."""


class TokenRegistry(FollowedTable):
    """The tokens of ``api-tokens``, applied by the follower thread (:meth:`follow`, or
    :func:`open_registry`); every read is thread-safe."""

    failure = TokenRegistryError

    def __init__(self, avro: AvroCodec) -> None:
        super().__init__()
        self._avro = avro
        self._lock = threading.Lock()
        self._tokens: dict[str, TokenRecord] = {}
        self._revoke_listeners: builtins.list[RevokeListener] = []
        self.skipped = 0

    def follow(self, consumer: Consumer, topic: str) -> None:
        """Start following ``topic`` with ``consumer`` (group-less, partition EOF on)."""
        self._start(CompactedFollower(consumer, topic, self.apply, "api-tokens"))

    def on_revoke(self, listener: RevokeListener) -> None:
        """Call ``listener(token_id)`` on the follower thread whenever a revoked record or a
        tombstone for a known token arrives (also while catching up, so a listener sees every
        token that no longer works). A listener that raises is logged and ignored."""
        self._revoke_listeners.append(listener)

    def authenticate(self, authorization: str | None) -> Principal | None:
        """The principal of an ``Authorization: Bearer <token>`` value, or None when it is
        missing, malformed, unknown, revoked or has the wrong secret."""
        if authorization is None or self._dead():
            return None
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        parsed = parse_token(token)
        if parsed is None:
            return None
        record = self.get(parsed[0])
        matches = hash_matches(token, record.hash if record is not None else _NO_HASH)
        if record is None or not matches or record.revoked:
            return None
        return Principal(record.id, record.workspace, record.admin, record.name)

    def get(self, token_id: str) -> TokenRecord | None:
        with self._lock:
            return self._tokens.get(token_id)

    def list(self, workspace: str | None = None) -> builtins.list[TokenRecord]:
        """Every token (revoked ones too), oldest first; only ``workspace``'s when given."""
        with self._lock:
            found = [
                t for t in self._tokens.values() if workspace is None or t.workspace == workspace
            ]
        return sorted(found, key=lambda t: (t.created_ms, t.id))

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Apply one record of the topic (``value`` None: a tombstone)."""
        if key is None:
            self.skipped += 1
            return
        token_id = key.decode("utf-8", "replace")
        if value is None:
            with self._lock:
                gone = self._tokens.pop(token_id, None)
            if gone is not None:
                self._revoked(token_id)
            return
        try:
            record = decode_token(self._avro, value)
        except Exception as exc:
            self.skipped += 1
            log.error("skipping unreadable api-token record %r: %s", key[:80], exc)
            return
        if record.id != token_id:
            self.skipped += 1
            log.error("skipping api-token record keyed %r holding id %r", key[:80], record.id)
            return
        with self._lock:
            self._tokens[token_id] = record
        if record.revoked:
            self._revoked(token_id)

    def _dead(self) -> bool:
        return self._follower is not None and self._follower.error is not None

    def _revoked(self, token_id: str) -> None:
        for listener in self._revoke_listeners:
            try:
                listener(token_id)
            except Exception:
                log.exception("api-token revoke listener failed for %s", token_id)


def open_registry(settings: Settings, avro: AvroCodec) -> TokenRegistry:
    """Start following ``api-tokens`` (call ``wait_caught_up`` before trusting it)."""
    consumer = make_consumer(settings, None, **{"enable.partition.eof": "true"})
    registry = TokenRegistry(avro)
    registry.follow(consumer, Topics.from_settings(settings).api_tokens)
    return registry
