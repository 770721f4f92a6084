"""How far ahead of its attempts the dispatcher reads ``deliveries``: a memory budget.

Tasks read but not started (waiting in a lane, ready, or held by a limit) are counted in
bytes. Past three quarters of ``WEBHOOK_READ_AHEAD_MB`` lanes that have not started are spilled
to ``parked`` (:mod:`worker.dispatch.spill`) down to half; past the whole budget, when spilling
could not keep up, the ``deliveries`` partitions are paused, and resumed below half of it. The
budget is memory, not a count: an ordered endpoint starts only once its first task has been
read, so the dispatcher reads as far ahead as memory allows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, TopicPartition

from worker.dispatch.clock import Clock
from worker.dispatch.ordering import Work
from worker.observability.metrics import Metrics

__all__ = [
    "FULL_SPEED_READ_AHEAD",
    "HELD_TASK_OVERHEAD",
    "POLL_BATCH",
    "TRICKLE_BATCH",
    "ReadAhead",
    "held_bytes",
]

POLL_BATCH = 500
# Past FULL_SPEED_READ_AHEAD x max-in-flight unstarted tasks every attempt slot has work queued:
# read on (to find endpoints not seen yet) only TRICKLE_BATCH a step, leaving the CPU to the
# attempts in flight (and to a router on the same loop), up to the memory budget.
FULL_SPEED_READ_AHEAD = 8
TRICKLE_BATCH = 50
# What a task held in memory costs beyond its body: the decoded record's other fields and
# Python objects (measured ~670 B with tracemalloc), rounded up.
HELD_TASK_OVERHEAD = 1024
COUNT_INTERVAL_S = 0.02  # a count walks every held task: not every step
IDLE_COUNT_INTERVAL_S = 0.2  # after a spill that found nothing to spill


def held_bytes(work: Work) -> int:
    """The estimated memory of one task read but not started."""
    return len(work.task.body) + HELD_TASK_OVERHEAD


class ReadAhead:
    """The unstarted tasks' bytes (as last counted plus the fresh ones read since: an upper
    bound between counts) and whether ``deliveries`` is paused for it."""

    def __init__(
        self,
        *,
        consumer: Consumer,
        budget: int,
        max_in_flight: int,
        clock: Clock,
        metrics: Metrics,
        deliveries: Callable[[], list[TopicPartition]],
    ) -> None:
        self._consumer = consumer
        self._budget = budget
        self._max_in_flight = max_in_flight
        self._clock = clock
        self._metrics = metrics
        self._deliveries = deliveries
        self.held = 0
        self.held_tasks = 0
        self.paused = False
        self._next_count = 0.0

    def batch(self) -> int:
        """How many records to read this step."""
        full_speed = self.held_tasks < FULL_SPEED_READ_AHEAD * self._max_in_flight
        return POLL_BATCH if full_speed else TRICKLE_BATCH

    def fresh(self, work: Work) -> None:
        self.held += held_bytes(work)
        self.held_tasks += 1

    def check(self, unstarted: Callable[[], Iterable[Work]], spill: Callable[[int], int]) -> None:
        """Past three quarters of the budget (an upper bound until counted: fetches can be
        large), count, and ``spill`` down to half (it returns the bytes it freed)."""
        now = self._clock.monotonic()
        if self.held > self._budget * 3 // 4 and now >= self._next_count:
            self._next_count = now + COUNT_INTERVAL_S
            self.count(unstarted())
            if self.held > self._budget * 3 // 4:
                freed = spill(self.held - self._budget // 2)
                self.held -= freed
                self._apply()
                if not freed:  # nothing could go: a count walks every lane, so not so soon
                    self._next_count = now + IDLE_COUNT_INTERVAL_S

    def count(self, unstarted: Iterable[Work]) -> None:
        """Count the unstarted works and pause or resume ``deliveries``."""
        held = count = 0
        for work in unstarted:
            held += held_bytes(work)
            count += 1
        self.held, self.held_tasks = held, count
        self._apply()

    def _apply(self) -> None:
        held = self.held
        self._metrics.read_ahead(held)
        if not self.paused and held > self._budget:
            self.paused = True
            self._consumer.pause(self._deliveries())
        elif self.paused and held < self._budget // 2:
            self.paused = False
            self._consumer.resume(self._deliveries())

    def reset(self) -> None:
        """Assignment resumed every partition."""
        self.paused = False
