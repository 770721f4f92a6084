"""Partitions held at a record that cannot be read yet (its schema's registry is down).

Holding is pausing, never sleeping in the poll loop: the partition is paused and sought back
to the held record, so it is read again, first, when the back-off is over; the other
partitions go on. Records of a held partition already handed out in the same batch are
dropped unread (the seek reads them again).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, TopicPartition

__all__ = ["PartitionHolds"]

FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0


class PartitionHolds:
    """Held partitions: ``(topic, partition) -> (held offset, resume at, back-off)``; a
    partition's back-off doubles each time its held record fails again, and starts over once
    the record is read."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.held: dict[tuple[str, int], tuple[int, float, float]] = {}
        self._clock = clock

    def __len__(self) -> int:
        return len(self.held)

    def skips(self, topic: str, partition: int, offset: int) -> bool:
        """True for a record past the held one of its partition (read again after the seek)."""
        held = self.held.get((topic, partition))
        return held is not None and offset > held[0]

    def hold(self, consumer: Consumer | None, topic: str, partition: int, offset: int) -> None:
        tp = TopicPartition(topic, partition, offset)
        before = self.held.get((topic, partition))
        backoff = min(before[2] * 2, MAX_BACKOFF_S) if before is not None else FIRST_BACKOFF_S
        self.held[(topic, partition)] = (offset, self._clock() + backoff, backoff)
        if consumer is not None:
            consumer.pause([tp])
            consumer.seek(tp)

    def read(self, topic: str, partition: int, offset: int) -> None:
        """The held record (or an earlier one, after a rebalance) was read: the hold is over."""
        held = self.held.get((topic, partition))
        if held is not None and offset <= held[0]:
            del self.held[(topic, partition)]

    def resume_due(self, consumer: Consumer | None) -> None:
        """Resume the partitions whose back-off is over (their held record comes first)."""
        now = self._clock()
        due = [key for key, (_, at, _) in self.held.items() if at <= now]
        if not due or consumer is None:
            return
        for topic, partition in due:
            # Not assigned any more (a rebalance): nothing to resume.
            with contextlib.suppress(KafkaException):
                consumer.resume([TopicPartition(topic, partition)])
            offset, _, backoff = self.held[(topic, partition)]
            self.held[(topic, partition)] = (offset, float("inf"), backoff)  # until it is read

    def drop(self, partitions: list[TopicPartition]) -> None:
        """Revoked or lost: whoever owns them next starts from the committed offset."""
        for tp in partitions:
            self.held.pop((tp.topic, tp.partition), None)
