"""A lane's parked tasks, kept small: ``parked`` holds them, memory holds their index.

Per parked task a lane keeps its ``seq`` and its offset in ``parked`` (two 8-byte integers in
arrays, in ``seq`` order), and a body only while its write is unacknowledged or once it has
been read back for its turn. What a worker holds therefore does not grow with the bodies of a
failing endpoint's backlog, only with 16 bytes per parked task. :class:`Tally` counts, across
all lanes, the parked tasks and the read-back bodies held (the read-back budget), and the tasks
read but not started with their estimated memory (the read-ahead budget).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left

from worker.model import DeliveryTask

__all__ = ["Backlog", "Tally"]

UNACKED = -1  # offset of an entry whose write to parked is not yet acknowledged
COMPACT_AT = 1024


class Tally:
    """Totals over every lane of a dispatcher."""

    __slots__ = ("parked", "read_back", "unstarted", "unstarted_bytes")

    def __init__(self) -> None:
        self.parked = 0  # parked tasks
        self.read_back = 0  # bodies read back from parked and not yet attempted
        # Tasks read but not started, waiting in a lane or in the scheduler, and their
        # estimated memory: kept as they come and go, so the read-ahead never walks them.
        self.unstarted = 0
        self.unstarted_bytes = 0

    def hold(self, size: int) -> None:
        """A task of ``size`` estimated bytes waits to start."""
        self.unstarted += 1
        self.unstarted_bytes += size

    def release(self, size: int) -> None:
        """A waiting task started, or left memory (parked, spilled, revoked)."""
        self.unstarted -= 1
        self.unstarted_bytes -= size


class Backlog:
    """The parked tasks of one lane: (seq, offset) pairs in seq order, bodies for some."""

    __slots__ = ("_bodies", "_offsets", "_seqs", "_start", "_tally")

    def __init__(self, tally: Tally) -> None:
        self._tally = tally
        self._seqs = array("q")
        self._offsets = array("q")
        self._start = 0
        self._bodies: dict[int, DeliveryTask] | None = None

    def __len__(self) -> int:
        return len(self._seqs) - self._start

    def seqs(self) -> list[int]:
        return self._seqs[self._start :].tolist()

    def add(self, seq: int, offset: int = UNACKED, task: DeliveryTask | None = None) -> None:
        """A parked task: with its body while the write is unacknowledged (``offset`` -1),
        else just its place in ``parked``."""
        seqs = self._seqs
        if len(seqs) > self._start and seqs[-1] >= seq:
            i = bisect_left(seqs, seq, self._start)
            if i < len(seqs) and seqs[i] == seq:  # the same task again: the last write wins
                self._offsets[i] = offset
            else:
                seqs.insert(i, seq)
                self._offsets.insert(i, offset)
                self._tally.parked += 1
        else:
            seqs.append(seq)
            self._offsets.append(offset)
            self._tally.parked += 1
        if task is not None and offset == UNACKED:
            self._body_map()[seq] = task

    def acked(self, seq: int, offset: int) -> None:
        """The write of ``seq`` is durable at ``offset``: its body is dropped from memory."""
        i = self._find(seq)
        if i is not None:
            self._offsets[i] = offset
        bodies = self._bodies
        if bodies is not None and bodies.pop(seq, None) is not None and not bodies:
            self._bodies = None

    @property
    def settled(self) -> bool:
        """Every write acknowledged and no body in memory: the index alone is the backlog."""
        if self._bodies is not None:
            return False
        try:
            self._offsets.index(UNACKED, self._start)
        except ValueError:
            return True
        return False

    def packed(self) -> tuple[bytes, bytes]:
        """The seqs and offsets as bytes (:mod:`worker.dispatch.dormant`)."""
        return self._seqs[self._start :].tobytes(), self._offsets[self._start :].tobytes()

    @classmethod
    def unpacked(cls, tally: Tally, seqs: bytes, offsets: bytes) -> Backlog:
        """A settled backlog from :meth:`packed` (its entries already counted in ``tally``)."""
        backlog = cls(tally)
        backlog._seqs.frombytes(seqs)
        backlog._offsets.frombytes(offsets)
        return backlog

    def last(self) -> int | None:
        return self._seqs[-1] if len(self) else None

    def first(self) -> int | None:
        return self._seqs[self._start] if len(self) else None

    def first_task(self) -> DeliveryTask | None:
        """The first parked task if its body is in memory (None: it must be read back)."""
        if not len(self) or self._bodies is None:
            return None
        return self._bodies.get(self._seqs[self._start])

    def remove(self, seq: int) -> None:
        """``seq`` is no longer parked (attempted and resolved, or the new head)."""
        i = self._find(seq)
        if i is None:
            return
        self._tally.parked -= 1
        self._drop_body(seq, self._offsets[i])
        if i == self._start:
            self._start += 1
            if self._start >= COMPACT_AT and self._start * 2 >= len(self._seqs):
                del self._seqs[: self._start]
                del self._offsets[: self._start]
                self._start = 0
        else:
            del self._seqs[i]
            del self._offsets[i]

    def drop_through(self, seq: int) -> None:
        """Forget every entry at or below ``seq`` (a rebuilt lane's head supersedes them)."""
        while len(self) and self._seqs[self._start] <= seq:
            self.remove(self._seqs[self._start])

    def wanted(self, window: int) -> list[tuple[int, int]]:
        """(seq, offset) of the first ``window`` entries whose body must be read back."""
        bodies = self._bodies or {}
        end = min(len(self._seqs), self._start + window)
        return [
            (self._seqs[i], self._offsets[i])
            for i in range(self._start, end)
            if self._seqs[i] not in bodies and self._offsets[i] != UNACKED
        ]

    def fill(self, seq: int, task: DeliveryTask) -> None:
        """A body read back from ``parked``."""
        bodies = self._body_map()
        if seq not in bodies and self._find(seq) is not None:
            bodies[seq] = task
            self._tally.read_back += 1

    def release_read_back(self) -> None:
        """Drop the bodies read back (still in ``parked``): the lane waits on a head again."""
        for seq in list(self._bodies or ()):
            i = self._find(seq)
            if i is not None and self._offsets[i] != UNACKED:  # unacknowledged: the only copy
                self._drop_body(seq, self._offsets[i])

    def forget(self) -> None:
        """The lane is dropped (its partition revoked): take it out of the totals."""
        self._tally.parked -= len(self)
        for seq in list(self._bodies or ()):
            i = self._find(seq)
            if i is not None and self._offsets[i] != UNACKED:
                self._tally.read_back -= 1
        self._bodies = None
        self._seqs, self._offsets, self._start = array("q"), array("q"), 0

    def _drop_body(self, seq: int, offset: int) -> None:
        bodies = self._bodies
        if bodies is not None and bodies.pop(seq, None) is not None:
            if offset != UNACKED:
                self._tally.read_back -= 1
            if not bodies:
                self._bodies = None

    def _body_map(self) -> dict[int, DeliveryTask]:
        if self._bodies is None:
            self._bodies = {}
        return self._bodies

    def _find(self, seq: int) -> int | None:
        seqs = self._seqs
        if len(seqs) > self._start and seqs[self._start] == seq:
            return self._start
        i = bisect_left(seqs, seq, self._start)
        return i if i < len(seqs) and seqs[i] == seq else None
