"""Records consumed in one poll, handled a time slice at a time.

A stage's step polls up to a batch of records (1,000 for the router, 500 for the dispatcher)
and must not hold the event loop for all of them: one record costs 0.1 to 0.5 ms to decode,
encode and write, so a whole batch held the loop for hundreds of milliseconds, and every
attempt, acknowledgement and ``/metrics`` answer waited (``webhook_event_loop_lag_seconds``).
:class:`Slices` keeps the batch and handles it for at most ``SLICE_S`` a step; the rest waits
for the next step, in order. Polling stays batched (its cost per record does not change), and
the stage polls again only once the batch is done, so a rebalance (its callbacks run inside a
poll) never falls between two slices of a batch.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from worker.eventloop import answered

__all__ = ["FIRST_S", "SLICE_S", "Budget", "Slices"]

# Two stages share the loop (router and dispatcher): each step holds it for about this long.
# An attempt's response and the start of the next one each wait for the slices ahead of them
# on the loop: at 5 ms a healthy 50 ms endpoint ran at 0.72 of its rate beside a flood, at 2 ms
# 0.81 (issue 24's scenario 3 at 0.3 of its size).
SLICE_S = 0.002
# While an answered attempt waits to resume, a slice ends after this much work: a step per
# record would cost more in the steps' own overhead than it saves the attempt.
FIRST_S = 0.0005

T = TypeVar("T")


class Budget:
    """One step's time: ``slice_s`` from ``now``, or ``FIRST_S`` of it while an answered
    attempt waits to resume on this thread's loop (:func:`worker.eventloop.answered`)."""

    __slots__ = ("_deadline", "_first", "_waiting")

    def __init__(self, now: float, slice_s: float) -> None:
        self._deadline = now + slice_s
        self._first = now + min(FIRST_S, slice_s)
        self._waiting = answered()

    def spent(self, now: float) -> bool:
        return now >= self._deadline or (now >= self._first and self._waiting.waiting > 0)


class Slices(Generic[T]):
    """The records of the last poll not handled yet."""

    __slots__ = ("_clock", "_queue", "_slice_s")

    def __init__(
        self, slice_s: float = SLICE_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._queue: deque[T] = deque()
        self._slice_s = slice_s
        self._clock = clock

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, messages: Iterable[T]) -> None:
        self._queue.extend(messages)

    def keep(self, wanted: Callable[[T], bool]) -> None:
        """Only the waiting records ``wanted`` says yes to stay, in order."""
        self._queue = deque(filter(wanted, self._queue))

    def handle(self, handle: Callable[[T], None]) -> int:
        """``handle`` the waiting records in order, until the step's :class:`Budget` is spent
        (at least one); returns how many were handled."""
        queue, clock = self._queue, self._clock
        budget = Budget(clock(), self._slice_s)
        n = 0
        while queue:
            handle(queue.popleft())
            n += 1
            if budget.spent(clock()):
                break
        return n
