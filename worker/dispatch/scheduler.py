"""What may start now: ready work, work waiting for its workspace's slot or its
subscription's (``max_in_flight``), rate-limited work waiting for its time, and the count of
attempts in flight.

The scheduler never reorders a lane: an ordered lane has at most one task in it at a time.
It performs no I/O; the dispatcher asks it for the next work to start and tells it when an
attempt ends.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from worker.dispatch.clock import Clock
from worker.dispatch.limits import RateLimiter, WorkspaceSlots
from worker.dispatch.ordering import Work
from worker.subscriptions.model import Subscription

__all__ = ["Scheduler"]


class Scheduler:
    """Ready, rate-limited and workspace-waiting work, and the attempt slots.

    ``admit`` is asked before a work takes a slot; False discards it (a revoked generation,
    or a copy that must not be sent: the callback settles it)."""

    def __init__(
        self,
        *,
        max_in_flight: int,
        per_workspace: int,
        clock: Clock,
        lookup: Callable[[str], Subscription | None],
    ) -> None:
        self._limit = max_in_flight
        self._clock = clock
        self._lookup = lookup
        self._slots = WorkspaceSlots(per_workspace)
        self._rates = RateLimiter()
        self.ready: deque[Work] = deque()
        self._timed: list[tuple[float, int, Work]] = []  # rate-limited starts (heap)
        self._timed_seq = itertools.count()
        self._ws_waiting: dict[str, deque[Work]] = {}
        self._sub_running: dict[str, int] = {}
        self._sub_waiting: dict[str, deque[Work]] = {}
        self.running = 0

    def add(self, work: Work) -> None:
        self.ready.append(work)

    def release_due(self) -> None:
        """Rate-limited work whose time has come becomes ready."""
        timed, clock = self._timed, self._clock.monotonic()
        while timed and timed[0][0] <= clock:
            self.ready.append(heapq.heappop(timed)[2])

    def starts(self, admit: Callable[[Work], bool]) -> Iterator[Work]:
        """The works to start now, in order; each holds an attempt slot until ``ended``."""
        now = self._clock.monotonic()
        while self.ready and self.running < self._limit:
            work = self.ready.popleft()
            if not admit(work):
                continue
            workspace = work.task.workspace
            if not self._slots.try_take(workspace):
                self._ws_waiting.setdefault(workspace, deque()).append(work)
                continue
            sub_id = work.task.subscription_id
            sub = self._lookup(sub_id)
            cap = sub.in_flight_cap if sub is not None else None
            sub_running = self._sub_running.get(sub_id, 0)
            if cap is not None and sub_running >= cap:
                self._slots.give_back(workspace)
                self._sub_waiting.setdefault(sub_id, deque()).append(work)
                continue
            wait = self._rates.delay(sub_id, sub.rate_limit, now) if sub is not None else 0.0
            if wait > 0:
                self._slots.give_back(workspace)
                heapq.heappush(self._timed, (now + wait, next(self._timed_seq), work))
                continue
            self.running += 1
            self._sub_running[sub_id] = sub_running + 1
            yield work

    def ended(self, work: Work) -> None:
        """An attempt ended: its slots are free, and its workspace's next waiting work is
        ready first."""
        self.running -= 1
        workspace, sub_id = work.task.workspace, work.task.subscription_id
        self._slots.give_back(workspace)
        left = self._sub_running.get(sub_id, 0) - 1
        if left > 0:
            self._sub_running[sub_id] = left
        else:
            self._sub_running.pop(sub_id, None)
        for waiting_by, name in ((self._sub_waiting, sub_id), (self._ws_waiting, workspace)):
            waiting = waiting_by.get(name)
            if waiting:
                self.ready.appendleft(waiting.popleft())
                if not waiting:
                    del waiting_by[name]

    def unstarted(self) -> Iterator[Work]:
        """Every work held here that has not started."""
        yield from self.ready
        yield from (t[2] for t in self._timed)
        yield from itertools.chain.from_iterable(self._ws_waiting.values())
        yield from itertools.chain.from_iterable(self._sub_waiting.values())

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget the works of partitions no longer owned."""
        gone = set(partitions)
        self.ready = deque(w for w in self.ready if w.partition not in gone)
        self._timed = [t for t in self._timed if t[2].partition not in gone]
        heapq.heapify(self._timed)
        for waiting_by in (self._ws_waiting, self._sub_waiting):
            for name, queue in list(waiting_by.items()):
                kept = deque(w for w in queue if w.partition not in gone)
                if kept:
                    waiting_by[name] = kept
                else:
                    del waiting_by[name]
