"""Order with retries: the state of one lane in one partition.

A lane is what must go one at a time: a whole subscription in the ``endpoint`` scope, one
ordering key of a subscription in the ``key`` scope (see :func:`lane_of`; the design is in
docs/ordering.md). Every topic the dispatcher touches is keyed by subscription id and
co-partitioned, so the owner of partition *p* of ``deliveries`` also owns *p* of every
``retry.<delay>`` topic and of ``parked``. For each lane with work it keeps a :class:`Lane`:

* ``busy``: the one task in flight (an ordered endpoint never has two);
* ``waiting``: tasks read after ``busy`` while nothing has failed: held in memory only, their
  source offsets unfinished, so a crash simply replays them;
* ``head``: the task waiting in a delay topic after a failed attempt. Once it is in the
  delay topic, a ``head/<sub>`` marker (``head/<sub>/<key digest>`` for a key lane) is
  written to ``parked``;
* ``parked``: tasks behind the head (or left to drain after it), written to ``parked`` as
  ``task/<sub>/<seq>`` (``task/<sub>/<key digest>/<seq>`` for a key lane) so that
  ``deliveries`` can be committed past them. In memory only their index is kept, and their
  bodies are read back when their turn comes (:mod:`worker.dispatch.backlog`).

``seq`` is the task's offset in ``deliveries``: the order the endpoint must see. Writes to
``parked`` are ordered so that the topic alone tells a new owner the truth: a head marker is
written only once the retried copy is durable, and parked tasks only once the head marker is.
A head marker therefore implies its retry record exists; parked tasks without a head mean
"drain these in seq order"; and a replayed task whose seq is at or below the highest seq the
lane has durably seen was already resolved or is already held.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass
from enum import Enum

from worker.dispatch.backlog import Backlog, Tally
from worker.model import DeliveryTask

__all__ = [
    "HELD_TASK_OVERHEAD",
    "Decision",
    "HeadRef",
    "Lane",
    "LaneId",
    "Work",
    "head_key",
    "held_bytes",
    "key_digest",
    "lane_of",
    "parse_task_key",
    "task_key",
]

# (subscription id, 16-byte digest of the ordering key); None for a whole-endpoint lane.
LaneId = tuple[str, bytes | None]


def key_digest(key: bytes) -> bytes:
    return hashlib.blake2b(key, digest_size=16).digest()


def lane_of(task: DeliveryTask) -> LaneId | None:
    """The lane a task waits in, or None when it is not held behind any other: the ``none``
    scope, or the ``key`` scope for an event without a key."""
    scope = task.scope
    if scope == "endpoint":
        return task.subscription_id, None
    if scope == "key" and task.ordering_key is not None:
        return task.subscription_id, key_digest(task.ordering_key)
    return None


def head_key(lane: LaneId) -> bytes:
    """The ``parked`` key of a lane's head marker."""
    sub_id, digest = lane
    if digest is None:
        return f"head/{sub_id}".encode()
    return f"head/{sub_id}/{digest.hex()}".encode()


def task_key(lane: LaneId, seq: int) -> bytes:
    """The ``parked`` key of a task parked behind a head (``seq`` is unique per partition)."""
    sub_id, digest = lane
    if digest is None:
        return f"task/{sub_id}/{seq:020d}".encode()
    return f"task/{sub_id}/{digest.hex()}/{seq:020d}".encode()


def parse_task_key(key: bytes) -> tuple[str, LaneId, int] | None:
    """``(kind, lane, seq)`` of a ``head/...`` (seq -1) or ``task/...`` key, else None."""
    parts = key.decode("utf-8", "replace").split("/")
    kind = parts[0]
    try:
        if kind == "head" and len(parts) in (2, 3):
            digest = bytes.fromhex(parts[2]) if len(parts) == 3 else None
            return kind, (parts[1], digest), -1
        if kind == "task" and len(parts) in (3, 4):
            digest = bytes.fromhex(parts[2]) if len(parts) == 4 else None
            return kind, (parts[1], digest), int(parts[-1])
    except ValueError:
        return None
    return None


@dataclass(slots=True)
class Work:
    """A task with where it was read from. ``offset`` is -1 for a task taken from ``parked``."""

    task: DeliveryTask
    topic: str
    partition: int
    offset: int
    from_parked: bool = False
    gen: int = 0  # assignment generation; outcomes of a revoked generation are ignored


# What a task held in memory costs beyond its body: the decoded record's other fields and
# Python objects (measured ~670 B with tracemalloc), rounded up.
HELD_TASK_OVERHEAD = 1024


def held_bytes(work: Work) -> int:
    """The estimated memory of one task read but not started (the read-ahead budget's unit)."""
    return len(work.task.body) + HELD_TASK_OVERHEAD


@dataclass(frozen=True, slots=True)
class HeadRef:
    """The head: which copy of which task is awaited from a delay topic (its body is there)."""

    delivery_id: str
    hop: int
    seq: int

    @classmethod
    def of(cls, task: DeliveryTask) -> HeadRef:
        return cls(task.delivery_id, task.hop, task.seq)


class Decision(Enum):
    ATTEMPT = "attempt"  # start it now (the lane is now busy with it)
    WAIT = "wait"  # held in memory behind the busy task
    PARK = "park"  # write a parked entry, then finish the source offset
    HOLD = "hold"  # held in memory until the head marker is durable, then parked (or, for
    # a retry copy due before its head marker is durable, then attempted)
    DROP = "drop"  # a replayed or stale copy: finish the source offset, do nothing


_NO_WORK: tuple[Work, ...] = ()


@dataclass(slots=True)
class Lane:
    """The state of one lane (an ordered endpoint, or one key of it) within one partition.

    ``waiting`` and ``backlog`` are created when first used: an idle-but-parked key lane costs
    little. ``reading`` is set while the lane waits for its next parked body to be read back.
    """

    tally: Tally
    busy: Work | None = None
    waiting_queue: deque[Work] | None = None
    head: HeadRef | None = None
    head_durable: bool = False
    backlog: Backlog | None = None
    max_seq: int = -1  # highest seq durably held (head or parked)
    reading: bool = False
    due: Work | None = None  # the head's retry copy, due before its head marker was durable

    @property
    def waiting(self) -> deque[Work] | tuple[Work, ...]:
        return self.waiting_queue if self.waiting_queue is not None else _NO_WORK

    @property
    def parked_count(self) -> int:
        return len(self.backlog) if self.backlog is not None else 0

    @property
    def idle(self) -> bool:
        return (
            self.busy is None
            and not self.waiting_queue
            and self.head is None
            and not self.parked_count
        )

    @property
    def durable(self) -> bool:
        return self.head_durable or bool(self.parked_count)

    def on_fresh(self, work: Work) -> Decision:
        """A task read from ``deliveries``."""
        seq = work.task.seq
        if self.durable:
            if seq <= self.max_seq:
                return Decision.DROP
            self.park(work.task)
            return Decision.PARK
        if self.head is not None:  # head marker not yet durable
            self._wait(work)
            return Decision.HOLD
        if self.busy is not None:
            if seq <= self.busy.task.seq:
                return Decision.DROP
            self._wait(work)
            return Decision.WAIT
        self.busy = work
        return Decision.ATTEMPT

    def on_retry_due(self, work: Work) -> Decision:
        """A task from a delay topic whose due time has come. The head's copy waits (HOLD)
        while the head marker is not yet durable: resolved before it, the head's tombstone
        could precede its marker in ``parked``, and the late acknowledgement would mark a
        resolved head durable, after which the lane parked its tasks for good."""
        head = self.head
        if (
            head is None
            or self.busy is not None
            or self.due is not None
            or head.delivery_id != work.task.delivery_id
            or head.hop != work.task.hop
        ):
            return Decision.DROP
        if not self.head_durable:
            self.due = work
            return Decision.HOLD
        self.busy = work
        return Decision.ATTEMPT

    def park(self, task: DeliveryTask, offset: int = -1) -> None:
        """A task is parked: its body is kept until its write is acknowledged (``acked``)."""
        if self.backlog is None:
            self.backlog = Backlog(self.tally)
        self.backlog.add(task.seq, offset, task if offset < 0 else None)
        self.max_seq = max(self.max_seq, task.seq)

    def acked(self, seq: int, offset: int) -> None:
        if self.backlog is not None:
            self.backlog.acked(seq, offset)

    def set_head(self, task: DeliveryTask) -> None:
        """``busy`` failed and ``task`` (its next copy) is going to a delay topic."""
        work = self.busy
        if work is not None and work.from_parked:
            self._remove_parked(work.task)
        if self.backlog is not None:  # what was read back waits for the head: in parked
            self.backlog.release_read_back()
        self.busy = None
        self.head = HeadRef.of(task)
        self.head_durable = False

    @property
    def spillable(self) -> bool:
        """The lane's next task has not started and came from ``deliveries``: the lane may
        move whole to ``parked`` (:meth:`spill`). The dispatcher checks it has not started."""
        busy = self.busy
        return busy is not None and not busy.from_parked and self.head is None

    def spill(self) -> list[Work]:
        """Move ``busy`` (not started) and the tasks behind it to the parked backlog, in seq
        order; returns them, to be written to ``parked``. The lane then has parked tasks and
        no head: "attempt these in seq order", to itself and to a new owner alike."""
        works = [self.busy] if self.busy is not None else []
        works.extend(self.waiting)
        self._release_waiting()
        self.busy = None
        for work in works:
            self.park(work.task)
        return works

    def head_marker_durable(self, marker: HeadRef) -> tuple[list[Work], Work | None]:
        """``marker`` is acknowledged: the held tasks must now be parked (returned), and a
        retry copy that fell due meanwhile is attempted (returned; the lane is busy with it).
        The acknowledgement of a marker that is no longer the head changes nothing."""
        if self.head != marker:
            return [], None
        self.head_durable = True
        self.max_seq = max(self.max_seq, marker.seq)
        held = list(self.waiting)
        self._release_waiting()
        for work in held:
            self.park(work.task)
        due, self.due = self.due, None
        if due is not None:
            self.busy = due
        return held, due

    def resolved(self) -> bool:
        """``busy`` succeeded or was dead-lettered. Returns True if a head marker must be
        cleared (the resolved task was the head)."""
        work = self.busy
        self.busy = None
        was_head = (
            work is not None
            and self.head is not None
            and self.head.delivery_id == work.task.delivery_id
        )
        if was_head:
            self.head = None
            self.head_durable = False
        if work is not None and work.from_parked:
            self._remove_parked(work.task)
        return was_head

    def next_work(self, topic: str, partition: int, gen: int) -> Work | None:
        """The task to attempt next once the lane is free, or None (makes it ``busy``). None
        with ``reading`` set: the next parked task must first be read back."""
        self.reading = False
        if self.busy is not None or self.head is not None:
            return None
        if self.waiting_queue:
            self.busy = self.waiting_queue.popleft()
            self.tally.release(held_bytes(self.busy))
            if not self.waiting_queue:
                self.waiting_queue = None
            return self.busy
        backlog = self.backlog
        if backlog is not None and len(backlog):
            task = backlog.first_task()
            if task is None:
                self.reading = True
                return None
            self.busy = Work(task, topic, partition, -1, from_parked=True, gen=gen)
            return self.busy
        return None

    def forget(self) -> None:
        """The partition is no longer owned: what the lane holds leaves the tallies."""
        self._release_waiting()
        if self.backlog is not None:
            self.backlog.forget()

    def _wait(self, work: Work) -> None:
        if self.waiting_queue is None:
            self.waiting_queue = deque()
        self.waiting_queue.append(work)
        self.tally.hold(held_bytes(work))

    def _release_waiting(self) -> None:
        """Empty ``waiting`` (its tasks move on: parked, or forgotten)."""
        if self.waiting_queue is not None:
            for work in self.waiting_queue:
                self.tally.release(held_bytes(work))
            self.waiting_queue = None

    def _remove_parked(self, task: DeliveryTask) -> None:
        if self.backlog is not None:
            self.backlog.remove(task.seq)
            if not len(self.backlog):
                self.backlog = None
