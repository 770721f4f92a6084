"""What may start now: ready work, work waiting for its workspace's slot or its
subscription's (``max_in_flight``), rate-limited work waiting for its time, and the count of
attempts in flight.

The scheduler never reorders a lane: an ordered lane has at most one task in it at a time.
It performs no I/O; the dispatcher asks it for the next work to start and tells it when an
attempt ends. The works it holds are counted in the dispatcher's :class:`Tally` as they come
and go (the read-ahead budget).
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from worker.dispatch.backlog import Tally
from worker.dispatch.clock import Clock
from worker.dispatch.limits import RateLimiter, WorkspaceSlots
from worker.dispatch.ordering import Work, held_bytes
from worker.subscriptions.model import Subscription

__all__ = ["Scheduler"]


def _keep(queues: dict[str, deque[Work]], wanted: Callable[[Work], bool]) -> None:
    """Only the wanted works stay in each queue; a queue left empty goes."""
    for name, queue in list(queues.items()):
        kept = deque(w for w in queue if wanted(w))
        if kept:
            queues[name] = kept
        else:
            del queues[name]


class _FairQueue:
    """Works waiting for a slot of one workspace, served round robin by subscription: an
    ordered lane's next task waits behind at most one task of every other subscription, not
    behind a flood of unordered ones."""

    __slots__ = ("_by_sub",)

    def __init__(self) -> None:
        self._by_sub: dict[str, deque[Work]] = {}

    def __bool__(self) -> bool:
        return bool(self._by_sub)

    def __iter__(self) -> Iterator[Work]:
        return itertools.chain.from_iterable(self._by_sub.values())

    def push(self, work: Work) -> None:
        sub_id = work.task.subscription_id
        queue = self._by_sub.get(sub_id)
        if queue is None:
            queue = self._by_sub[sub_id] = deque()
        queue.append(work)

    def pop(self) -> Work | None:
        """The next subscription's oldest work (that subscription goes to the back)."""
        if not self._by_sub:
            return None
        sub_id, queue = next(iter(self._by_sub.items()))
        work = queue.popleft()
        del self._by_sub[sub_id]
        if queue:
            self._by_sub[sub_id] = queue
        return work

    def keep(self, wanted: Callable[[Work], bool]) -> None:
        _keep(self._by_sub, wanted)

    def by_sub(self) -> dict[str, deque[Work]]:
        return self._by_sub


class Scheduler:
    """Ready, rate-limited and workspace-waiting work, and the attempt slots.

    ``admit`` is asked before a work takes a slot; False discards it (a revoked generation,
    or a copy that must not be sent: the callback settles it).

    A work waiting for its workspace's slot or its subscription's is made ready when a slot
    frees: an attempt ends, or a work that would have taken it does not (refused, or held
    by a rate limit or a subscription cap). Every such event promotes the next waiting work,
    so nothing waits while a slot it could take is free.
    """

    def __init__(
        self,
        *,
        max_in_flight: int,
        per_workspace: int,
        clock: Clock,
        lookup: Callable[[str], Subscription | None],
        tally: Tally | None = None,
    ) -> None:
        self._limit = max_in_flight
        self.tally = tally if tally is not None else Tally()
        self._clock = clock
        self._lookup = lookup
        self._slots = WorkspaceSlots(per_workspace)
        self._rates = RateLimiter()
        self.ready: deque[Work] = deque()
        self._timed: list[tuple[float, int, Work]] = []  # rate-limited starts (heap)
        self._timed_seq = itertools.count()
        self._ws_waiting: dict[str, _FairQueue] = {}
        self._sub_running: dict[str, int] = {}
        self._sub_waiting: dict[str, deque[Work]] = {}
        self.running = 0

    def add(self, work: Work) -> None:
        self.ready.append(work)
        self.tally.hold(held_bytes(work))

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
            workspace, sub_id = work.task.workspace, work.task.subscription_id
            if not admit(work):
                self.tally.release(held_bytes(work))
                self._promote_sub(sub_id)
                self._promote_workspace(workspace)
                continue
            if not self._slots.try_take(workspace):
                queue = self._ws_waiting.get(workspace)
                if queue is None:
                    queue = self._ws_waiting[workspace] = _FairQueue()
                queue.push(work)
                continue
            sub = self._lookup(sub_id)
            cap = sub.in_flight_cap if sub is not None else None
            sub_running = self._sub_running.get(sub_id, 0)
            if cap is not None and sub_running >= cap:
                self._slots.give_back(workspace)
                self._sub_waiting.setdefault(sub_id, deque()).append(work)
                self._promote_workspace(workspace)
                continue
            wait = self._rates.delay(sub_id, sub.rate_limit, now) if sub is not None else 0.0
            if wait > 0:
                self._slots.give_back(workspace)
                heapq.heappush(self._timed, (now + wait, next(self._timed_seq), work))
                self._promote_workspace(workspace)
                continue
            self.running += 1
            self._sub_running[sub_id] = sub_running + 1
            self.tally.release(held_bytes(work))
            yield work

    def ended(self, work: Work) -> None:
        """An attempt ended: its slots are free, and the next work waiting for either is
        ready first."""
        self.running -= 1
        workspace, sub_id = work.task.workspace, work.task.subscription_id
        self._slots.give_back(workspace)
        left = self._sub_running.get(sub_id, 0) - 1
        if left > 0:
            self._sub_running[sub_id] = left
        else:
            self._sub_running.pop(sub_id, None)
        self._promote_sub(sub_id)
        self._promote_workspace(workspace)

    def _promote_sub(self, sub_id: str) -> None:
        waiting = self._sub_waiting.get(sub_id)
        if waiting:
            self.ready.appendleft(waiting.popleft())
            if not waiting:
                del self._sub_waiting[sub_id]

    def _promote_workspace(self, workspace: str) -> None:
        queue = self._ws_waiting.get(workspace)
        if queue is not None:
            work = queue.pop()
            if work is not None:
                self.ready.appendleft(work)
            if not queue:
                del self._ws_waiting[workspace]

    def queued(self, sub_id: str) -> int:
        """How many of a subscription's works wait here (ready, or for a slot or its cap)."""
        count = len(self._sub_waiting.get(sub_id, ()))
        for queue in self._ws_waiting.values():
            count += len(queue.by_sub().get(sub_id, ()))
        return count + sum(1 for w in self.ready if w.task.subscription_id == sub_id)

    def take_back(self, wanted: Callable[[Work], bool]) -> Iterator[Work]:
        """Works taken out of the queues of works waiting for a slot or a subscription's cap,
        the longest queue first, newest work first, while ``wanted`` says yes; stop iterating
        to stop taking (what is taken is made durable elsewhere: :mod:`worker.dispatch.spill`).
        """
        queues: list[tuple[dict[str, deque[Work]], str]] = [
            (self._sub_waiting, sub_id) for sub_id in self._sub_waiting
        ]
        for fair in self._ws_waiting.values():
            queues.extend((fair.by_sub(), sub_id) for sub_id in fair.by_sub())
        queues.sort(key=lambda q: len(q[0][q[1]]), reverse=True)
        try:
            for owner, sub_id in queues:
                queue = owner.get(sub_id)
                while queue and wanted(queue[-1]):
                    work = queue.pop()
                    self.tally.release(held_bytes(work))
                    yield work
        finally:
            for owner, sub_id in queues:
                if sub_id in owner and not owner[sub_id]:
                    del owner[sub_id]
            for workspace in [w for w, fair in self._ws_waiting.items() if not fair]:
                del self._ws_waiting[workspace]

    def unstarted(self) -> Iterator[Work]:
        """Every work held here that has not started."""
        yield from self.ready
        yield from (t[2] for t in self._timed)
        yield from itertools.chain.from_iterable(self._ws_waiting.values())
        yield from itertools.chain.from_iterable(self._sub_waiting.values())

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget the works of partitions no longer owned; a dropped ready work may have been
        promoted into a free slot, so every queue that still waits promotes one."""
        gone = set(partitions)
        tally = self.tally

        def kept(w: Work) -> bool:
            if w.partition in gone:
                tally.release(held_bytes(w))
                return False
            return True

        self.ready = deque(w for w in self.ready if kept(w))
        self._timed = [t for t in self._timed if kept(t[2])]
        heapq.heapify(self._timed)
        for workspace, queue in list(self._ws_waiting.items()):
            queue.keep(kept)
            if not queue:
                del self._ws_waiting[workspace]
        _keep(self._sub_waiting, kept)
        for sub_id in list(self._sub_waiting):
            self._promote_sub(sub_id)
        for workspace in list(self._ws_waiting):
            self._promote_workspace(workspace)
