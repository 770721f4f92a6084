"""The read-ahead's count of unstarted tasks is kept as tasks come and go (no walk): after any
sequence of what the dispatcher does to its lanes and its scheduler, the tally must equal a
walk over every lane's waiting tasks and every work the scheduler holds."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from worker.dispatch.backlog import Tally
from worker.dispatch.clock import Clock
from worker.dispatch.ordering import Decision, HeadRef, Lane, Work, held_bytes
from worker.dispatch.scheduler import Scheduler
from worker.model import DeliveryTask
from worker.subscriptions.model import SecretEntry, Subscription

LANES = 3  # lane n lives in partition n % 2


class Clock0(Clock):
    def monotonic(self) -> float:
        return 0.0

    def now_ms(self) -> int:
        return 0


class Rig:
    """Lanes and a scheduler sharing one tally, driven the way the dispatcher drives them."""

    def __init__(self) -> None:
        self.tally = Tally()
        sub = Subscription(
            "s", "ws", "https://x", ("*",), (SecretEntry("whsec_x"),), ordering="key"
        )
        self.scheduler = Scheduler(
            max_in_flight=2, per_workspace=0, clock=Clock0(), lookup=lambda _: sub, tally=self.tally
        )
        self.lanes = {n: Lane(self.tally) for n in range(LANES)}
        self.running: list[tuple[int, Work]] = []
        self.seq = 0

    def fresh(self, n: int, size: int) -> None:
        self.seq += 1
        task = DeliveryTask(f"m{self.seq}", "s", "ws", f"e{self.seq}", "x.y", b"x" * size)
        task.seq = self.seq
        work = Work(task, "deliveries", n % 2, self.seq)
        if self.lanes[n].on_fresh(work) is Decision.ATTEMPT:
            self.scheduler.add(work)

    def start(self) -> None:
        for work in self.scheduler.starts(lambda w: w.task.seq % 7 != 0):  # some refused
            n = next(n for n, lane in self.lanes.items() if lane.busy is work)
            self.running.append((n, work))

    def succeed(self) -> None:
        if self.running:
            n, work = self.running.pop(0)
            self.scheduler.ended(work)
            lane = self.lanes[n]
            lane.resolved()
            nxt = lane.next_work("parked", n % 2, 0)
            if nxt is not None:
                self.scheduler.add(nxt)

    def fail(self) -> None:
        if self.running:
            n, work = self.running.pop(0)
            self.scheduler.ended(work)
            lane = self.lanes[n]
            copy = dataclasses.replace(work.task, hop=work.task.hop + 1)
            lane.set_head(copy)
            lane.head_marker_durable(HeadRef.of(copy))

    def fail_before_marker(self) -> None:
        if self.running:
            n, work = self.running.pop(0)
            self.scheduler.ended(work)
            self.lanes[n].set_head(dataclasses.replace(work.task, hop=work.task.hop + 1))

    def spill(self) -> None:
        def spillable(work: Work) -> bool:
            return any(lane.busy is work and lane.spillable for lane in self.lanes.values())

        for work in self.scheduler.take_back(spillable):
            next(lane for lane in self.lanes.values() if lane.busy is work).spill()

    def lose(self, partition: int) -> None:
        self.scheduler.drop({partition})
        for n in self.lanes:
            if n % 2 == partition:
                self.lanes[n].forget()
                self.lanes[n] = Lane(self.tally)
        self.running = [(n, w) for n, w in self.running if n % 2 != partition]

    def walk(self) -> tuple[int, int]:
        works = [*self.scheduler.unstarted()]
        for lane in self.lanes.values():
            works.extend(lane.waiting)
        return len(works), sum(map(held_bytes, works))


OPS = st.one_of(
    st.tuples(st.just("fresh"), st.integers(0, LANES - 1), st.integers(0, 300)),
    st.tuples(st.sampled_from(["start", "succeed", "fail", "fail_before_marker", "spill"])),
    st.tuples(st.just("lose"), st.integers(0, 1)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(OPS, max_size=60))
def test_the_tally_equals_a_walk_after_any_sequence(ops):
    rig = Rig()
    for op in ops:
        getattr(rig, op[0])(*op[1:])
        assert (rig.tally.unstarted, rig.tally.unstarted_bytes) == rig.walk(), op
