"""``Idempotency-Key`` on create: a repeat within 24 h returns the first answer and creates
nothing, on every replica.

The answers live on the compacted ``idempotency`` topic (keyed by workspace and key), which
every replica follows. A request first writes a ``pending`` record, then runs, then writes
``done`` with its answer (encrypted like secrets: it holds the new subscription's secret).
The same key with another body is refused (422); a repeat while the first still runs is 409
(a ``pending`` record younger than a minute, or one running in this process). A failed
request writes a tombstone, so the client may try again with the same key.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import Producer

from worker.codec.avro import AvroCodec
from worker.errors import ConflictError, InvalidInput
from worker.kafka.writes import produce_acked
from worker.subscriptions.secrets import SEALED_PREFIX, SecretBox

__all__ = ["IdempotencyConflict", "IdempotencyMismatch", "IdempotencyStore", "request_hash"]

KEEP_MS = 24 * 3_600_000
PENDING_MS = 60_000
SCHEMA = "IdempotencyRecord"


class IdempotencyConflict(ConflictError):
    """The first request with this key is still running."""


class IdempotencyMismatch(InvalidInput):
    """The key was used before with another request."""


@dataclass(frozen=True, slots=True)
class _Record:
    state: str
    request_hash: str
    status: int
    response: str
    created_ms: int


def request_hash(route: str, body: bytes) -> str:
    return hashlib.sha256(route.encode() + b"\0" + body).hexdigest()


def _now_ms() -> int:
    return int(time.time() * 1000)


class IdempotencyStore:
    """Answers by (workspace, key), applied from the topic by a follower (``apply``)."""

    def __init__(
        self, producer: Producer, topic: str, avro: AvroCodec, box: SecretBox | None
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._avro = avro
        self._box = box
        self._records: dict[bytes, _Record] = {}
        self._running: set[bytes] = set()
        self._lock = threading.Lock()

    @staticmethod
    def _key(workspace: str, key: str) -> bytes:
        return orjson.dumps([workspace, key])

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One record of the topic (a tombstone forgets the key)."""
        if key is None:
            return
        with self._lock:
            if value is None:
                self._records.pop(key, None)
                return
            r = self._avro.decode_as(SCHEMA, value)
            self._records[key] = _Record(
                r["state"], r["request_hash"], r["status"], r["response"], r["created_ms"]
            )
            if len(self._records) > 200_000:
                horizon = _now_ms() - KEEP_MS
                self._records = {k: v for k, v in self._records.items() if v.created_ms > horizon}

    def run(
        self,
        workspace: str,
        key: str,
        digest: str,
        action: Callable[[], tuple[int, dict[str, Any]]],
    ) -> tuple[int, dict[str, Any]]:
        """The first answer for (workspace, key), or run ``action`` and keep its answer."""
        k = self._key(workspace, key)
        now = _now_ms()
        with self._lock:
            found = self._records.get(k)
            if found is not None and now - found.created_ms > KEEP_MS:
                found = None
            if found is not None and found.request_hash != digest:
                raise IdempotencyMismatch(
                    "this Idempotency-Key was used with another request in the last 24 hours"
                )
            if found is not None and found.state == "done":
                return found.status, orjson.loads(self._open(found.response))
            if k in self._running or (found is not None and now - found.created_ms < PENDING_MS):
                raise IdempotencyConflict(
                    "a request with this Idempotency-Key is still in progress"
                )
            self._running.add(k)
        try:
            self._write(k, workspace, key, "pending", digest, 0, "", now)
            try:
                status, answer = action()
            except BaseException:
                self._write(k, workspace, key, None, digest, 0, "", now)
                raise
            response = orjson.dumps(answer).decode()
            sealed = self._seal(response)
            # Applied here too, so a repeat on this replica finds it before the follower does.
            self.apply(k, self._write(k, workspace, key, "done", digest, status, sealed, now))
            return status, answer
        finally:
            with self._lock:
                self._running.discard(k)

    def _seal(self, text: str) -> str:
        return self._box.seal(text) if self._box is not None else text

    def _open(self, text: str) -> str:
        if text.startswith(SEALED_PREFIX) and self._box is not None:
            return self._box.open(text)
        return text

    def _encode(
        self, workspace: str, key: str, state: str, digest: str, status: int, response: str, at: int
    ) -> bytes:
        return self._avro.encode(
            SCHEMA,
            {
                "workspace": workspace,
                "key": key,
                "state": state,
                "request_hash": digest,
                "status": status,
                "response": response,
                "created_ms": at,
            },
        )

    def _write(
        self,
        k: bytes,
        workspace: str,
        key: str,
        state: str | None,
        digest: str,
        status: int,
        response: str,
        at: int,
    ) -> bytes | None:
        """Write the record (None: a tombstone) and wait for the broker; returns its value."""
        value = (
            None
            if state is None
            else self._encode(workspace, key, state, digest, status, response, at)
        )
        produce_acked(self._producer, self._topic, value, k)
        return value
