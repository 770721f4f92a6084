"""Offsets follow outcomes: a partition's committable offset is its lowest unfinished record.

A record is *finished* when its outcome is durable (delivered, handed to a retry topic,
parked, dead-lettered, or routed and acknowledged). Records finish out of order; the tracker
only ever lets the stored offset advance past a contiguous finished prefix. The finished
offsets past it are also kept as runs (``[start, end)``, merged as offsets finish), so the
progress a restart needs is read from a few runs, not sorted from every offset: behind one
unfinished record a flood leaves hundreds of thousands finished.
"""

from __future__ import annotations

import heapq
import logging

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

__all__ = ["MAX_RANGES", "OffsetBook", "OffsetTracker", "expand_ranges", "position", "ranges_of"]

MAX_RANGES = 4096

log = logging.getLogger(__name__)


class OffsetTracker:
    """Per topic-partition bookkeeping of started and finished offsets."""

    __slots__ = (
        "_changed",
        "_finished",
        "_floor",
        "_heap",
        "_next",
        "_run_ends",
        "_run_starts",
        "_stored",
    )

    def __init__(self) -> None:
        self._heap: list[int] = []  # started, not yet known to be below the watermark
        self._finished: set[int] = set()
        self._next: int | None = None  # one past the highest offset started
        self._stored: int | None = None
        # The lowest offset a restart could read again: the first one started, then each
        # offset the broker confirms as committed.
        self._floor: int | None = None
        self._changed = False  # finished offsets changed since take_finished_ranges
        # The finished offsets as runs: start -> end and end -> start (ends exclusive).
        self._run_starts: dict[int, int] = {}
        self._run_ends: dict[int, int] = {}

    def start(self, offset: int) -> None:
        heapq.heappush(self._heap, offset)
        if self._next is None or offset >= self._next:
            self._next = offset + 1
        if self._floor is None:
            self._floor = offset

    def committed(self, offset: int) -> None:
        """The broker confirmed ``offset`` as this partition's committed offset."""
        if self._floor is None or offset > self._floor:
            self._floor = offset

    @property
    def floor(self) -> int | None:
        return self._floor

    def finish(self, offset: int) -> None:
        finished = self._finished
        if offset in finished:
            return
        finished.add(offset)
        self._changed = True
        starts, ends = self._run_starts, self._run_ends
        start = ends.pop(offset, offset)  # joins a run that ends here (its start is rewritten)
        end = starts.pop(offset + 1, offset + 1)  # and one that starts right after (its end too)
        starts[start] = end
        ends[end] = start

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

    def take_finished_ranges(self) -> list[int] | None:
        """If anything finished since the last call: every finished offset a restart could
        read again, as flat ``[start, end)`` pairs (at most MAX_RANGES pairs, lowest first),
        else None.

        That is the finished prefix from the floor (the last offset the broker confirmed
        committed) to the committable offset, which is stored but may not be committed
        yet, and the finished offsets above it.
        """
        if not self._changed:
            return None
        self._changed = False
        low, high = self._floor, self.committable()  # drops the finished prefix from the heap
        prefix = [low, high] if low is not None and high is not None and low < high else []
        starts, ends = self._run_starts, self._run_ends
        if high is not None:  # runs below the committable offset are the prefix now
            for start, end in [(s, e) for s, e in starts.items() if e <= high]:
                del starts[start], ends[end]
        flat = prefix
        for start in sorted(starts)[: MAX_RANGES - len(prefix) // 2]:
            flat += (start, starts[start])
        return flat

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

    def on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """The consumer's ``on_commit`` callback: move each partition's floor up."""
        if error is not None:
            return
        for tp in partitions:
            tracker = self._trackers.get((tp.topic, tp.partition))
            if tracker is not None and tp.error is None and tp.offset >= 0:
                tracker.committed(tp.offset)

    def floor(self, topic: str, partition: int) -> int | None:
        tracker = self._trackers.get((topic, partition))
        return tracker.floor if tracker is not None else None

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

    def progress(self) -> list[tuple[str, int, list[int]]]:
        """``(topic, partition, ranges)`` for each partition whose finished-but-uncommitted
        offsets changed since the last call (see :meth:`OffsetTracker.take_finished_ranges`)."""
        changed = []
        for (topic, partition), tracker in self._trackers.items():
            ranges = tracker.take_finished_ranges()
            if ranges is not None:
                changed.append((topic, partition, ranges))
        return changed


def position(message: Message) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed record (never None for a real record)."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    assert topic is not None and partition is not None and offset is not None
    return topic, partition, offset


def ranges_of(offsets: list[int], limit: int) -> list[int]:
    """Sorted offsets as flat ``[start, end)`` pairs, at most ``limit`` pairs (lowest kept:
    a dropped range only means those records are sent again after a crash)."""
    flat: list[int] = []
    for offset in offsets:
        if flat and flat[-1] == offset:
            flat[-1] = offset + 1
        elif len(flat) // 2 >= limit:
            break
        else:
            flat += (offset, offset + 1)
    return flat


def expand_ranges(flat: list[int]) -> set[int]:
    """The offsets of flat ``[start, end)`` pairs."""
    out: set[int] = set()
    for start, end in zip(flat[::2], flat[1::2], strict=True):
        out.update(range(start, end))
    return out
