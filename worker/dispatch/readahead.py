"""How far ahead of its attempts the dispatcher reads ``deliveries``: a memory budget.

Tasks read but not started (waiting in a lane, ready, or held by a limit) are counted in
bytes, as they come and go (:class:`~worker.dispatch.backlog.Tally`: a step never walks them;
at full scale a walk over every lane held the event loop for tens of milliseconds). Past three
quarters of ``WEBHOOK_READ_AHEAD_MB`` lanes that have not started are spilled to ``parked``
(:mod:`worker.dispatch.spill`) down to half; past the whole budget, when spilling could not
keep up, the ``deliveries`` partitions are paused, and resumed below half of it. The budget is
memory, not a count: an ordered endpoint starts only once its first task has been read, so the
dispatcher reads as far ahead as memory allows.
"""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition

from worker.dispatch.backlog import Tally
from worker.dispatch.clock import Clock
from worker.observability.metrics import Metrics

__all__ = ["FULL_SPEED_READ_AHEAD", "POLL_BATCH", "TRICKLE_BATCH", "ReadAhead"]

POLL_BATCH = 500
# Past FULL_SPEED_READ_AHEAD x max-in-flight unstarted tasks every attempt slot has work queued:
# read on (to find endpoints not seen yet) only TRICKLE_BATCH a step, leaving the CPU to the
# attempts in flight (and to a router on the same loop), up to the memory budget.
FULL_SPEED_READ_AHEAD = 8
TRICKLE_BATCH = 50
IDLE_SPILL_INTERVAL_S = 0.2  # after a spill that found nothing to spill


class ReadAhead:
    """Whether ``deliveries`` is paused for the budget, from the tally of unstarted tasks."""

    def __init__(
        self,
        *,
        consumer: Consumer,
        budget: int,
        max_in_flight: int,
        clock: Clock,
        metrics: Metrics,
        tally: Tally,
        deliveries: Callable[[], list[TopicPartition]],
    ) -> None:
        self._consumer = consumer
        self._budget = budget
        self._max_in_flight = max_in_flight
        self._clock = clock
        self._metrics = metrics
        self._tally = tally
        self._deliveries = deliveries
        self.paused = False
        self._next_spill = 0.0

    @property
    def held(self) -> int:
        """The estimated bytes of the tasks read but not started."""
        return self._tally.unstarted_bytes

    def batch(self) -> int:
        """How many records to read this step."""
        full_speed = self._tally.unstarted < FULL_SPEED_READ_AHEAD * self._max_in_flight
        return POLL_BATCH if full_speed else TRICKLE_BATCH

    def check(self, spill: Callable[[int], int]) -> None:
        """Past three quarters of the budget, ``spill`` down to half (it returns the bytes it
        freed); then pause or resume ``deliveries``."""
        if self.held > self._budget * 3 // 4:
            now = self._clock.monotonic()
            if now >= self._next_spill and not spill(self.held - self._budget // 2):
                # Nothing could go: finding that out looks at every waiting queue, so not soon.
                self._next_spill = now + IDLE_SPILL_INTERVAL_S
        self.apply()

    def apply(self) -> None:
        """Pause ``deliveries`` past the budget, resume below half of it."""
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
