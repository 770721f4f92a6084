"""Following a compacted topic: every partition from the beginning, then on, in one thread.

A :class:`CompactedFollower` hands every record's ``(key, value)`` to a callback (a tombstone
is ``value=None``); the callback keeps the last value per key itself, since broker compaction
is never relied upon (Tansu does not compact at all). ``caught_up`` is set once every
partition that existed at start has reported partition EOF (Tansu's high watermark can be
wrong), and the follower keeps reading afterwards: a new record reaches the callback as soon
as the consumer has fetched it (milliseconds, not a poll interval). A failure (missing topic,
a raising callback) is kept in ``error``, sets ``caught_up`` so that waiters wake, and ends
the thread.

The consumer must be group-less with ``enable.partition.eof=true``; the follower closes it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from worker.kafka.clients import close_consumer

__all__ = ["Apply", "CompactedFollower", "FollowedTable"]

log = logging.getLogger(__name__)

Apply = Callable[[bytes | None, bytes | None], None]
_POLL_S = 0.1
_BATCH = 500


class CompactedFollower:
    """Reads ``topic`` into ``apply`` on a background thread named ``name``."""

    def __init__(
        self, consumer: Consumer, topic: str, apply: Apply, name: str, poll_s: float = _POLL_S
    ) -> None:
        """``poll_s`` bounds how long a record may wait for a batch to fill (lower it for a
        table that requests wait on)."""
        self.topic = topic
        self._poll_s = poll_s
        self.name = name
        self.caught_up = threading.Event()
        self.error: BaseException | None = None
        self._consumer = consumer
        self._apply = apply
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._applied: dict[int, int] = {}  # partition -> next offset to apply
        self._progress = threading.Condition()

    def start(self) -> None:
        self._thread.start()

    def wait_caught_up(self, timeout: float) -> bool:
        """True once caught up without error within ``timeout`` seconds."""
        self.caught_up.wait(timeout)
        return self.caught_up.is_set() and self.error is None

    def wait_applied(self, partition: int, offset: int, timeout: float) -> bool:
        """Wait until the record at ``offset`` of ``partition`` went through the callback:
        a writer that follows its own topic reads its own write this way."""
        with self._progress:
            return self._progress.wait_for(
                lambda: self._applied.get(partition, -1) > offset or self.error is not None,
                timeout,
            )

    def stop(self) -> None:
        """Stop reading and close the consumer (waits up to 10 s for the thread)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        try:
            partitions = self._partitions()
            self._consumer.assign(
                [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions]
            )
            pending = set(partitions)
            while not self._stop.is_set():
                for message in self._next_batch():
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            pending.discard(message.partition())
                        else:
                            log.warning("%s topic: %s", self.name, error)
                        continue
                    self._apply(message.key(), message.value())
                    with self._progress:
                        self._applied[message.partition() or 0] = (message.offset() or 0) + 1
                        self._progress.notify_all()
                if not pending:
                    self.caught_up.set()
        except BaseException as exc:
            self.error = exc
            # Logged quietly: the owner reads ``error`` and reports it (the CLI in one line).
            log.info("%s follower stopped: %s", self.name, exc)
            self.caught_up.set()
            with self._progress:
                self._progress.notify_all()
        finally:
            close_consumer(self._consumer, f"{self.name} follower")

    def _next_batch(self) -> list[Message]:
        """What arrived, as soon as anything did: ``consume(n, timeout)`` waits out its whole
        timeout unless ``n`` records come, so a lone write would wait a poll interval; ``poll``
        returns on the first record, then ``consume(n, 0)`` takes what is already here."""
        first = self._consumer.poll(self._poll_s)
        if first is None:
            return []
        return [first, *self._consumer.consume(_BATCH, 0)]

    def _partitions(self) -> list[int]:
        metadata = self._consumer.list_topics(self.topic, timeout=10)
        info = metadata.topics.get(self.topic)
        if info is None or info.error is not None or not info.partitions:
            raise RuntimeError(
                f"topic {self.topic} does not exist: run `webhook-worker topics ensure`"
            )
        return sorted(info.partitions)


class FollowedTable:
    """Base of a table kept from a compacted topic by a :class:`CompactedFollower`: start,
    stop and readiness, with the follower's death raised as ``failure``."""

    failure: type[Exception] = RuntimeError

    def __init__(self) -> None:
        self._follower: CompactedFollower | None = None

    def _start(self, follower: CompactedFollower) -> None:
        self._follower = follower
        follower.start()

    def stop(self) -> None:
        if self._follower is not None:
            self._follower.stop()

    def ready(self) -> bool:
        """True once caught up with the topic; raises ``failure`` if the follower died."""
        if self._follower is None:
            return False
        if self._follower.error is not None:
            name = self._follower.name
            raise self.failure(f"{name} follower failed: {self._follower.error}")
        return self._follower.caught_up.is_set()

    def wait_caught_up(self, timeout: float) -> bool:
        if self._follower is not None:
            self._follower.caught_up.wait(timeout)
        return self.ready()
