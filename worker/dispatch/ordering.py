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
  ``task/<sub>/<seq>`` so that ``deliveries`` can be committed past them.

``seq`` is the task's offset in ``deliveries``: the order the endpoint must see. Writes to
``parked`` are ordered so that the topic alone tells a new owner the truth: a head marker is
written only once the retried copy is durable, and parked tasks only once the head marker is.
A head marker therefore implies its retry record exists; parked tasks without a head mean
"drain these in seq order"; and a replayed task whose seq is at or below the highest seq the
lane has durably seen was already resolved or is already held.
"""

from __future__ import annotations

import hashlib
from bisect import insort
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from worker.model import DeliveryTask

__all__ = ["Decision", "Lane", "LaneId", "Work", "head_key", "lane_of", "task_key"]

# (subscription id, ordering key); the key is None for a whole-endpoint lane.
LaneId = tuple[str, bytes | None]


def lane_of(task: DeliveryTask) -> LaneId | None:
    """The lane a task waits in, or None when it is not held behind any other: the ``none``
    scope, or the ``key`` scope for an event without a key."""
    scope = task.scope
    if scope == "endpoint":
        return task.subscription_id, None
    if scope == "key" and task.ordering_key is not None:
        return task.subscription_id, task.ordering_key
    return None


def head_key(lane: LaneId) -> bytes:
    """The ``parked`` key of a lane's head marker."""
    sub_id, key = lane
    if key is None:
        return f"head/{sub_id}".encode()
    return f"head/{sub_id}/{hashlib.blake2b(key, digest_size=16).hexdigest()}".encode()


def task_key(sub_id: str, seq: int) -> bytes:
    """The ``parked`` key of a task parked behind a head (``seq`` is unique per partition)."""
    return f"task/{sub_id}/{seq:020d}".encode()


@dataclass(slots=True)
class Work:
    """A task with where it was read from. ``offset`` is -1 for a task taken from ``parked``."""

    task: DeliveryTask
    topic: str
    partition: int
    offset: int
    from_parked: bool = False
    gen: int = 0  # assignment generation; outcomes of a revoked generation are ignored


class Decision(Enum):
    ATTEMPT = "attempt"  # start it now (the lane is now busy with it)
    WAIT = "wait"  # held in memory behind the busy task
    PARK = "park"  # write a parked entry, then finish the source offset
    HOLD = "hold"  # held in memory until the head marker is durable, then parked
    DROP = "drop"  # a replayed or stale copy: finish the source offset, do nothing


def _seq_key(task: DeliveryTask) -> int:
    return task.seq


@dataclass(slots=True)
class Lane:
    """The state of one lane (an ordered endpoint, or one key of it) within one partition."""

    busy: Work | None = None
    waiting: deque[Work] = field(default_factory=deque)
    head: DeliveryTask | None = None
    head_durable: bool = False
    parked: list[DeliveryTask] = field(default_factory=list)
    max_seq: int = -1  # highest seq durably held (head or parked)

    @property
    def idle(self) -> bool:
        return self.busy is None and not self.waiting and self.head is None and not self.parked

    @property
    def durable(self) -> bool:
        return self.head_durable or bool(self.parked)

    def on_fresh(self, work: Work) -> Decision:
        """A task read from ``deliveries``."""
        seq = work.task.seq
        if self.durable:
            if seq <= self.max_seq:
                return Decision.DROP
            self.park(work.task)
            return Decision.PARK
        if self.head is not None:  # head marker not yet durable
            self.waiting.append(work)
            return Decision.HOLD
        if self.busy is not None:
            if seq <= self.busy.task.seq:
                return Decision.DROP
            self.waiting.append(work)
            return Decision.WAIT
        self.busy = work
        return Decision.ATTEMPT

    def on_retry_due(self, work: Work) -> Decision:
        """A task from a delay topic whose due time has come."""
        head = self.head
        if (
            head is None
            or self.busy is not None
            or head.delivery_id != work.task.delivery_id
            or head.hop != work.task.hop
        ):
            return Decision.DROP
        self.busy = work
        return Decision.ATTEMPT

    def park(self, task: DeliveryTask) -> None:
        insort(self.parked, task, key=_seq_key)
        self.max_seq = max(self.max_seq, task.seq)

    def set_head(self, task: DeliveryTask) -> None:
        """``busy`` failed and ``task`` (its next copy) is going to a delay topic."""
        work = self.busy
        if work is not None and work.from_parked:
            self._remove_parked(work.task)
        self.busy = None
        self.head = task
        self.head_durable = False

    def head_marker_durable(self) -> list[Work]:
        """The head marker is acknowledged: the held tasks must now be parked (returned)."""
        self.head_durable = True
        if self.head is not None:
            self.max_seq = max(self.max_seq, self.head.seq)
        held = list(self.waiting)
        self.waiting.clear()
        for work in held:
            self.park(work.task)
        return held

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
        """The task to attempt next once the lane is free, or None (makes it ``busy``)."""
        if self.busy is not None or self.head is not None:
            return None
        if self.waiting:
            self.busy = self.waiting.popleft()
            return self.busy
        if self.parked:
            self.busy = Work(self.parked[0], topic, partition, -1, from_parked=True, gen=gen)
            return self.busy
        return None

    def _remove_parked(self, task: DeliveryTask) -> None:
        for i, parked in enumerate(self.parked):
            if parked.delivery_id == task.delivery_id:
                del self.parked[i]
                return
