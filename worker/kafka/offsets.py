"""Offsets follow outcomes: a partition's committable offset is its lowest unfinished record.

A record is *finished* when its outcome is durable (delivered, handed to a retry topic,
parked, dead-lettered, or routed and acknowledged). Records finish out of order; the tracker
only ever lets the stored offset advance past a contiguous finished prefix.
"""

from __future__ import annotations

import heapq
import logging

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

__all__ = ["OffsetBook", "OffsetTracker", "position"]

log = logging.getLogger(__name__)


class OffsetTracker:
    """Per topic-partition bookkeeping of started and finished offsets."""

    __slots__ = ("_finished", "_heap", "_next", "_stored")

    def __init__(self) -> None:
        self._heap: list[int] = []  # started, not yet known to be below the watermark
        self._finished: set[int] = set()
        self._next: int | None = None  # one past the highest offset started
        self._stored: int | None = None

    def start(self, offset: int) -> None:
        heapq.heappush(self._heap, offset)
        if self._next is None or offset >= self._next:
            self._next = offset + 1

    def finish(self, offset: int) -> None:
        self._finished.add(offset)

    @property
    def pending(self) -> int:
        return len(self._heap) - len(self._finished)

    def committable(self) -> int | None:
        """The offset to commit (next record to read after a restart), or None if none yet."""
        heap, finished = self._heap, self._finished
        while heap and heap[0] in finished:
            finished.discard(heapq.heappop(heap))
        if heap:
            return heap[0]
        return self._next

    def take_new_commit(self) -> int | None:
        """The committable offset if it moved since the last call, else None."""
        offset = self.committable()
        if offset is None or offset == self._stored:
            return None
        self._stored = offset
        return offset


class OffsetBook:
    """The trackers of every partition a consumer reads, and storing their progress.

    Stored offsets are committed by librdkafka's auto-commit (``enable.auto.offset.store``
    is off, so only what :meth:`store` hands over is ever committed) and explicitly on
    revocation and shutdown.
    """

    def __init__(self) -> None:
        self._trackers: dict[tuple[str, int], OffsetTracker] = {}

    def tracker(self, topic: str, partition: int) -> OffsetTracker:
        tracker = self._trackers.get((topic, partition))
        if tracker is None:
            tracker = self._trackers[(topic, partition)] = OffsetTracker()
        return tracker

    def begin(self, message: Message) -> tuple[str, int, int, OffsetTracker] | None:
        """Start tracking a consumed record; None for an error event (logged unless it is a
        partition EOF)."""
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error: %s", error)
            return None
        topic, partition, offset = position(message)
        tracker = self.tracker(topic, partition)
        tracker.start(offset)
        return topic, partition, offset, tracker

    def finish(self, topic: str, partition: int, offset: int) -> None:
        tracker = self._trackers.get((topic, partition))
        if tracker is not None:
            tracker.finish(offset)

    def store(self, consumer: Consumer) -> None:
        offsets = []
        for (topic, partition), tracker in self._trackers.items():
            offset = tracker.take_new_commit()
            if offset is not None:
                offsets.append(TopicPartition(topic, partition, offset))
        if offsets:
            consumer.store_offsets(offsets=offsets)

    def commit(self, consumer: Consumer) -> None:
        """Store and synchronously commit (revocation, shutdown)."""
        self.store(consumer)
        try:
            consumer.commit(asynchronous=False)
        except KafkaException as exc:  # nothing stored since the last commit, or group gone
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                log.warning("commit failed: %s", exc)

    def drop(self, partitions: set[int], topics: set[str] | None = None) -> None:
        for key in [k for k in self._trackers if k[1] in partitions]:
            if topics is None or key[0] in topics:
                del self._trackers[key]

    def pending(self) -> int:
        return sum(t.pending for t in self._trackers.values())


def position(message: Message) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed record (never None for a real record)."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    assert topic is not None and partition is not None and offset is not None
    return topic, partition, offset
