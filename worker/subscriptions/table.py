"""Following the compacted ``subscriptions`` topic into a :class:`SubscriptionIndex`.

The reading (every partition from the beginning, then on, in a background thread, with
``caught_up`` at partition EOF) is :class:`worker.kafka.compacted.CompactedFollower`'s; this
module keeps the last value per key and honours tombstones itself (it never relies on broker
compaction), and turns a dead follower into :class:`TableError` (or the ``SecretsError``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import Consumer

from worker.errors import BackendError
from worker.kafka.compacted import CompactedFollower
from worker.subscriptions.index import SubscriptionIndex
from worker.subscriptions.model import Subscription
from worker.subscriptions.secrets import SecretBox, SecretsError, open_subscription

__all__ = ["SubscriptionTable", "TableError", "TableFollower"]

log = logging.getLogger(__name__)


class TableError(BackendError):
    """The subscriptions topic cannot be followed (missing topic, broker error)."""


Listener = Callable[[Subscription | None, Subscription | None], None]


class SubscriptionTable:
    """Applies subscription records (key, value) to an index."""

    def __init__(self, *, decode: Callable[[bytes], Subscription], box: SecretBox | None) -> None:
        self.index = SubscriptionIndex()
        self._decode = decode
        self._box = box
        self._listeners: list[Listener] = []
        self.skipped = 0

    def on_change(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            self.skipped += 1
            return
        if value is None:
            old = self.index.remove(key.decode("utf-8", "replace"))
            new = None
        else:
            try:
                new = open_subscription(self._decode(value), self._box)
            except SecretsError:
                raise
            except Exception as exc:
                self.skipped += 1
                log.error("skipping unreadable subscription record %r: %s", key[:80], exc)
                return
            old = self.index.upsert(new)
        for listener in self._listeners:
            listener(old, new)


class TableFollower:
    """Reads the subscriptions topic into ``table`` on a background thread."""

    def __init__(self, consumer: Consumer, topic: str, table: SubscriptionTable) -> None:
        self.table = table
        self._follower = CompactedFollower(consumer, topic, table.apply, "subscriptions")
        self.caught_up = self._follower.caught_up

    @property
    def error(self) -> BaseException | None:
        return self._follower.error

    def start(self) -> None:
        self._follower.start()

    def ready(self) -> bool:
        """True once caught up; raises the follower's error if it died (fail, don't guess)."""
        if isinstance(self.error, SecretsError):
            raise self.error
        if self.error is not None:
            raise TableError(f"subscription table failed: {self.error}")
        return self.caught_up.is_set()

    def wait_caught_up(self, timeout: float) -> bool:
        self.caught_up.wait(timeout)
        return self.ready()

    def wait_applied(self, partition: int, offset: int, timeout: float = 10.0) -> bool:
        """True once the record at (``partition``, ``offset``) is in the table."""
        return self._follower.wait_applied(partition, offset, timeout)

    def stop(self) -> None:
        self._follower.stop()
