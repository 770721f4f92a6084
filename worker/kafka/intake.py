"""Records a stage has polled, handed out a partition at a time, in turn.

librdkafka's consumer keeps one queue for every partition it reads, filled fetch by fetch:
behind a backlog on one partition, a quiet partition's records wait until every record
fetched before them has been handled, and the client does not fetch again while that queue
is full. Measured on the router (issue 24's scenario 3), a healthy topic's events waited
seconds behind a flood on another topic, and its endpoint ran dry for up to 7 s at a time.

:class:`FairIntake` takes whatever the client has fetched, every step, into a queue per
partition, and hands records out ``QUANTUM`` at a time from each partition in turn, for at
most a slice of time a step (like :class:`~worker.kafka.slices.Slices`). A partition with
``HIGH`` records waiting here is paused, so that the client's next fetches bring the other
partitions' records, and resumed once ``LOW`` or fewer are left (not if someone else paused it
meanwhile: a partition held for the Schema Registry is resumed by its hold). This is what the
Java consumer does itself: it fetches only partitions with nothing buffered, and hands out
records partition by partition.

A partition's records are handed out in the order they were polled; nothing is reordered
within a partition. What waits here is bounded by about ``HIGH`` records plus one fetch
(``max.partition.fetch.bytes``) a partition, and the client's own queue.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from worker.kafka.slices import SLICE_S, Budget

__all__ = ["HIGH", "LOW", "QUANTUM", "FairIntake"]

QUANTUM = 16  # records from one partition before the next partition's turn
HIGH = 512  # records waiting here that pause their partition
LOW = 128  # ... and that resume it

Key = tuple[str | None, int | None]


class FairIntake:
    """The records of ``consumer`` polled and not handled yet, a queue per partition."""

    __slots__ = (
        "_clock",
        "_consumer",
        "_count",
        "_held",
        "_high",
        "_low",
        "_paused",
        "_quantum",
        "_queues",
        "_slice_s",
        "_turns",
    )

    def __init__(
        self,
        consumer: Consumer,
        *,
        held: Callable[[str, int], bool] = lambda topic, partition: False,
        slice_s: float = SLICE_S,
        quantum: int = QUANTUM,
        high: int = HIGH,
        low: int = LOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._consumer = consumer
        self._held = held  # paused by someone else: not ours to resume
        self._slice_s = slice_s
        self._quantum = quantum
        self._high = high
        self._low = low
        self._clock = clock
        self._queues: dict[Key, deque[Message]] = {}
        self._turns: deque[Key] = deque()  # the partitions with records waiting, in turn
        self._paused: set[tuple[str, int]] = set()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def paused(self) -> frozenset[tuple[str, int]]:
        """The partitions this intake paused."""
        return frozenset(self._paused)

    def add(self, messages: Iterable[Message]) -> None:
        """Queue polled records; pause the partitions that now have ``HIGH`` waiting."""
        queues, turns = self._queues, self._turns
        touched: set[Key] = set()
        for message in messages:
            key = (message.topic(), message.partition())
            queue = queues.get(key)
            if queue is None:
                queue = queues[key] = deque()
                turns.append(key)
            queue.append(message)
            touched.add(key)
            self._count += 1
        full = [
            (topic, partition)
            for topic, partition in touched
            if topic is not None
            and partition is not None
            and len(queues[(topic, partition)]) >= self._high
            and (topic, partition) not in self._paused
        ]
        if full:
            self._paused.update(full)
            self._call(self._consumer.pause, full)

    def handle(self, handle: Callable[[Message], None]) -> int:
        """``handle`` waiting records, ``QUANTUM`` a partition in turn, until the step's
        :class:`~worker.kafka.slices.Budget` is spent (at least one record); returns how many
        were handled. ``handle`` may :meth:`drop`."""
        queues, turns, clock = self._queues, self._turns, self._clock
        budget = Budget(clock(), self._slice_s)
        n = 0
        while turns:
            key = turns[0]
            queue = queues[key]
            spent = False
            for _ in range(min(self._quantum, len(queue))):
                self._count -= 1
                n += 1
                handle(queue.popleft())
                spent = budget.spent(clock())
                if spent or queues.get(key) is not queue:  # spent, or dropped while handled
                    break
            if queues.get(key) is queue:
                if queue:
                    turns.rotate(-1)
                else:
                    turns.popleft()
                    del queues[key]
            if spent:
                break
        self._resume_drained()
        return n

    def drop(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Forget the waiting records of ``partitions`` (revoked, lost, or sought back): the
        next owner, or the next read, starts from where they are."""
        for key in partitions:
            self._paused.discard(key)
            queue = self._queues.pop(key, None)
            if queue is not None:
                self._count -= len(queue)
                self._turns.remove(key)

    def _resume_drained(self) -> None:
        if not self._paused:
            return
        queues, low = self._queues, self._low
        drained = [key for key in self._paused if len(queues.get(key, ())) <= low]
        if not drained:
            return
        self._paused.difference_update(drained)
        ours = [key for key in drained if not self._held(*key)]
        if ours:
            self._call(self._consumer.resume, ours)

    @staticmethod
    def _call(action: Callable[[list[TopicPartition]], None], keys: list[tuple[str, int]]) -> None:
        # A partition revoked meanwhile is not the consumer's to pause or resume: nothing to do.
        with contextlib.suppress(KafkaException):
            action([TopicPartition(topic, partition) for topic, partition in keys])
