"""Following the compacted ``subscriptions`` topic into a :class:`SubscriptionIndex`.

The follower reads every partition from the beginning in a background thread, keeps the
last value per key and honours tombstones itself (it never relies on broker compaction),
and signals ``caught_up`` once it has reached the end of every partition that existed when
it started (partition-EOF events, since Tansu's high watermark can be wrong).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from worker.kafka.clients import close_consumer
from worker.subscriptions.index import SubscriptionIndex
from worker.subscriptions.model import Subscription
from worker.subscriptions.secrets import SecretBox, SecretsError, open_subscription

__all__ = ["SubscriptionTable", "TableError", "TableFollower"]

log = logging.getLogger(__name__)


class TableError(RuntimeError):
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
        self.caught_up = threading.Event()
        self.error: BaseException | None = None
        self._consumer = consumer
        self._topic = topic
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="subscriptions", daemon=True)

    def start(self) -> None:
        self._thread.start()

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

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        try:
            metadata = self._consumer.list_topics(self._topic, timeout=10)
            info = metadata.topics.get(self._topic)
            if info is None or info.error is not None or not info.partitions:
                raise RuntimeError(
                    f"topic {self._topic} does not exist: run `webhook-worker topics ensure`"
                )
            partitions = sorted(info.partitions)
            self._consumer.assign(
                [TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in partitions]
            )
            pending = set(partitions)
            while not self._stop.is_set():
                for message in self._consumer.consume(500, 0.1):
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            pending.discard(message.partition())
                        else:
                            log.warning("subscriptions topic: %s", error)
                        continue
                    self.table.apply(message.key(), message.value())
                if not pending:
                    self.caught_up.set()
        except BaseException as exc:
            self.error = exc
            log.error("subscription table stopped: %s", exc)
            self.caught_up.set()
        finally:
            close_consumer(self._consumer, "subscription table")
