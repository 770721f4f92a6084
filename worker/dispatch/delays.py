"""Reading the delay topics (``retry.<delay>``) in order, never attempting a task early.

Each delay-topic partition is a FIFO: records are appended as they fail, so due times grow
along the log. When the head record is not yet due, the partition is paused (the poll loop
keeps running; nothing sleeps) and records already fetched wait behind it; once the head
falls due, due records are released in order and the partition resumes when empty.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator

from confluent_kafka import Consumer, TopicPartition

from worker.dispatch.ordering import Work

__all__ = ["DelayQueues"]

TP = tuple[str, int]


class DelayQueues:
    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer
        self._queues: dict[TP, deque[Work]] = {}
        self._paused: set[TP] = set()

    def add(self, work: Work, now_ms: int) -> None:
        key = (work.topic, work.partition)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
        queue.append(work)
        if work.task.due_ms > now_ms and key not in self._paused:
            self._paused.add(key)
            self._consumer.pause([TopicPartition(*key)])

    def release(self, now_ms: int, handle: Callable[[Work], None]) -> None:
        """Hand every due record to ``handle``, in log order per partition."""
        for key, queue in self._queues.items():
            while queue and queue[0].task.due_ms <= now_ms:
                handle(queue.popleft())
            if not queue and key in self._paused:
                self._paused.discard(key)
                self._consumer.resume([TopicPartition(*key)])

    def overdue(self, now_ms: int) -> Iterator[tuple[str, float]]:
        """(topic, seconds past due) of each partition whose head is due but not released."""
        for (topic, _), queue in self._queues.items():
            if queue and queue[0].task.due_ms <= now_ms:
                yield topic, (now_ms - queue[0].task.due_ms) / 1000

    def drop(self, partitions: set[int]) -> None:
        """Forget revoked partitions (their records are read again by the next owner)."""
        for key in [k for k in self._queues if k[1] in partitions]:
            del self._queues[key]
            self._paused.discard(key)
