"""Spilling under memory pressure: whole lanes whose next task has not started move from memory
to ``parked``, and wait there, *deferred*, until their subscription has room again.

A flood for one subscription (tens of thousands of keys, each key's first task waiting for the
subscription's ``max_in_flight``, every later task of those keys waiting behind it) would
otherwise fill the read-ahead budget, and the budget pauses every ``deliveries`` partition, so
every other endpoint would wait for the flooded one. A spilled lane has parked tasks and no
head: what a drained lane looks like after SIGTERM, which ``parked`` already means "attempt these
in seq order" to a new owner. The design is in docs/ordering.md ("Spilling").

A spilled lane moves to its parked backlog at once (bodies kept until acknowledged), but its
writes to ``parked`` are issued a time slice a step (:class:`~worker.kafka.slices.Slices`):
an endpoint-scoped lane can hold tens of thousands of tasks, whose encoding held the event
loop for over a second. No deferred lane resumes while writes are still to be issued, so a
spilled task is never attempted (and its parked record tombstoned) before its write.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from worker.dispatch.ordering import Lane, LaneId, Work, lane_of
from worker.dispatch.outcomes import Outcomes
from worker.dispatch.partitions import Partitions
from worker.dispatch.scheduler import Scheduler
from worker.kafka.slices import Slices
from worker.observability.metrics import Metrics
from worker.subscriptions.model import Subscription

__all__ = ["RESUME_FACTOR", "RESUME_MIN", "SPILL_BATCH", "Spiller", "hand_over"]

SPILL_BATCH = 2000  # the most tasks spilled in one round (their writes follow a slice a step)
# A subscription's deferred lanes resume while fewer than this many times its cap of its tasks
# (and at least RESUME_MIN) wait for a slot or a read-back: each step's read-back pass then
# serves many lanes at once.
RESUME_FACTOR = 2
RESUME_MIN = 64

_LaneKey = tuple[int, LaneId]  # (partition, lane)


class Spiller:
    """Spills lanes to ``parked`` and resumes them in the order they were deferred."""

    def __init__(
        self,
        *,
        partitions: Partitions,
        scheduler: Scheduler,
        outcomes: Outcomes,
        lookup: Callable[[str], Subscription | None],
        max_in_flight: int,
        metrics: Metrics,
    ) -> None:
        self._partitions = partitions
        self._scheduler = scheduler
        self._outcomes = outcomes
        self._lookup = lookup
        self._max_in_flight = max_in_flight
        self._metrics = metrics
        # subscription -> its deferred lanes, oldest first
        self._deferred: dict[str, dict[_LaneKey, None]] = {}
        self._unwritten: Slices[tuple[Work, Lane]] = Slices()  # spilled, not yet written

    def spill(self, excess: int) -> int:
        """Spill lanes waiting in the scheduler (the longest subscription queue first, its
        newest lanes first) until ``excess`` bytes are freed or ``SPILL_BATCH`` tasks spilled;
        returns the bytes freed (what the tally of unstarted tasks released meanwhile)."""
        tally = self._partitions.tally
        before = tally.unstarted_bytes
        spilled = 0

        def wanted(work: Work) -> bool:
            freed = before - tally.unstarted_bytes
            return freed < excess and spilled < SPILL_BATCH and self._spillable(work)

        for work in self._scheduler.take_back(wanted):
            lane_id = lane_of(work.task)
            assert lane_id is not None  # _spillable
            lane = self._partitions.lane(work.partition, lane_id)
            works = lane.spill()
            self._unwritten.add((moved, lane) for moved in works)
            spilled += len(works)
            self.defer((work.partition, lane_id))
        if spilled:
            self._metrics.spilled(spilled)
        return before - tally.unstarted_bytes

    def write(self) -> None:
        """Issue the spilled tasks' writes to ``parked`` for a time slice."""
        if self._unwritten:
            self._unwritten.handle(self._write)

    def write_all(self) -> None:
        """Issue every spilled task's write (on the way out)."""
        while self._unwritten:
            self._unwritten.handle(self._write)

    def resume(self) -> None:
        """Give deferred lanes their turn while their subscription has room: each then
        attempts its parked tasks in seq order (read back from ``parked`` when not in memory).
        Not while spilled tasks wait for their writes."""
        if self._unwritten:
            return
        parts, scheduler = self._partitions, self._scheduler
        for sub_id, lanes in list(self._deferred.items()):
            sub = self._lookup(sub_id)
            cap = (sub.in_flight_cap if sub is not None else None) or self._max_in_flight
            room = max(RESUME_FACTOR * cap, RESUME_MIN)
            room -= scheduler.queued(sub_id) + parts.wanting_count(sub_id)
            while room > 0 and lanes:
                key = next(iter(lanes))
                del lanes[key]
                partition, lane_id = key
                lane = parts.find_lane(partition, lane_id)
                if lane is None or lane.busy is not None or lane.head is not None:
                    if lane is not None:
                        parts.settle(partition, lane_id, lane)  # unpacked by the lookup
                    continue
                nxt = parts.next_work(partition, lane_id, lane)
                if nxt is not None:
                    scheduler.add(nxt)
                room -= 1
            if not lanes:
                del self._deferred[sub_id]

    def drop(self, gone: set[int]) -> None:
        """Forget the deferred lanes and the unwritten spills of partitions no longer owned
        (the new owner reads their tasks from ``deliveries`` again)."""
        self._unwritten.keep(lambda item: item[0].partition not in gone)
        for sub_id, lanes in list(self._deferred.items()):
            kept = {key: None for key in lanes if key[0] not in gone}
            if kept:
                self._deferred[sub_id] = kept
            else:
                del self._deferred[sub_id]

    def _spillable(self, work: Work) -> bool:
        lane_id = lane_of(work.task)
        if lane_id is None or not self._partitions.current(work):
            return False
        lane = self._partitions.find_lane(work.partition, lane_id)
        return lane is not None and lane.busy is work and lane.spillable

    def defer(self, key: _LaneKey) -> None:
        """A lane with parked tasks and no head waits for its subscription's turn."""
        self._deferred.setdefault(key[1][0], {})[key] = None

    def _write(self, item: tuple[Work, Lane]) -> None:
        work, lane = item
        self._outcomes.write_parked(work, on_ack=partial(self._outcomes.finish, work), lane=lane)


def hand_over(
    scheduler: Scheduler, partitions: Partitions, outcomes: Outcomes, started: set[int]
) -> None:
    """On drain, make never-started work durable elsewhere so the commit can pass it:
    unordered tasks to the first delay topic (due now), idle ordered lanes' tasks to
    ``parked``. ``started`` holds the ids of the works in flight (their lanes replay from the
    source)."""
    for work in list(scheduler.unstarted()):
        if lane_of(work.task) is None and partitions.current(work):
            outcomes.spill_unordered(work)
    for lane in partitions.all_lanes():
        _hand_over_lane(lane, outcomes, started)


def _hand_over_lane(lane: Lane, outcomes: Outcomes, started: set[int]) -> None:
    if lane.head is not None:
        return
    busy = lane.busy
    if busy is not None and id(busy) in started:
        return  # still in flight: its lane replays from the source
    works = ([busy] if busy is not None and not busy.from_parked else []) + list(lane.waiting)
    for work in works:
        outcomes.write_parked(work, on_ack=partial(outcomes.finish, work))
