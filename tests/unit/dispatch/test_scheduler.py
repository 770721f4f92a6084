"""The dispatcher's scheduling state driven by hand: a fake clock, and a fake consumer that
only records pauses and resumes (no Kafka: these are pure state tests)."""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import TopicPartition

from worker.dispatch.backlog import Tally
from worker.dispatch.clock import Clock
from worker.dispatch.delays import DelayQueues
from worker.dispatch.ordering import HELD_TASK_OVERHEAD, Work
from worker.dispatch.readahead import POLL_BATCH, TRICKLE_BATCH, ReadAhead
from worker.dispatch.scheduler import Scheduler
from worker.model import DeliveryTask
from worker.observability.metrics import Metrics
from worker.subscriptions.model import SecretEntry, Subscription


class FakeClock(Clock):
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    def now_ms(self) -> int:
        return int(self.now * 1000)


class FakeConsumer:
    """Records what the state asked of the consumer."""

    def __init__(self) -> None:
        self.paused: set[tuple[str, int]] = set()

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        self.paused |= {(tp.topic, tp.partition) for tp in partitions}

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        self.paused -= {(tp.topic, tp.partition) for tp in partitions}


def sub(
    sub_id: str, rate: float | None = None, ordering: str = "none", cap: int | None = None
) -> Subscription:
    return Subscription(
        sub_id,
        "ws",
        "https://x",
        ("*",),
        (SecretEntry("whsec_x"),),
        rate_limit=rate,
        ordering=ordering,
        max_in_flight=cap,
    )


def work(n: int, *, ws: str = "ws", sub_id: str = "s", partition: int = 0, due: int = 0) -> Work:
    task = DeliveryTask(f"msg_{n}", sub_id, ws, f"e{n}", "x.y", b"{}", seq=n, due_ms=due)
    return Work(task, "deliveries", partition, n)


def scheduler(clock: Clock, *, limit: int = 10, per_ws: int = 0, subs=None) -> Scheduler:
    table = {s.id: s for s in subs or [sub("s")]}
    return Scheduler(max_in_flight=limit, per_workspace=per_ws, clock=clock, lookup=table.get)


def test_starts_in_order_up_to_the_limit_and_an_end_frees_a_slot():
    s = scheduler(FakeClock(), limit=2)
    works = [work(i) for i in range(3)]
    for w in works:
        s.add(w)
    started = list(s.starts(lambda w: True))
    assert started == works[:2] and s.running == 2
    assert list(s.starts(lambda w: True)) == []
    s.ended(works[0])
    assert list(s.starts(lambda w: True)) == [works[2]]


def test_admit_discards_without_taking_a_slot():
    s = scheduler(FakeClock(), limit=1)
    a, b = work(1), work(2)
    s.add(a)
    s.add(b)
    assert list(s.starts(lambda w: w is not a)) == [b]
    assert list(s.unstarted()) == []


def test_a_full_workspace_waits_and_goes_first_when_a_slot_frees():
    s = scheduler(FakeClock(), per_ws=1)
    a, b, c = work(1), work(2), work(3, ws="other")
    for w in (a, b, c):
        s.add(w)
    assert list(s.starts(lambda w: True)) == [a, c]
    assert list(s.unstarted()) == [b]
    s.add(work(4))
    s.ended(a)
    assert s.ready[0] is b  # the waiting one is ready before newer work


def test_a_rate_limited_start_waits_for_the_clock():
    clock = FakeClock()
    s = scheduler(clock, subs=[sub("s", rate=1.0)])
    a, b = work(1), work(2)
    s.add(a)
    s.add(b)
    assert list(s.starts(lambda w: True)) == [a]
    assert list(s.unstarted()) == [b]  # timed
    clock.now += 0.5
    s.release_due()
    assert list(s.starts(lambda w: True)) == []
    clock.now += 0.6
    s.release_due()
    assert list(s.starts(lambda w: True)) == [b]


def test_a_subscription_never_has_more_than_its_max_in_flight():
    s = scheduler(FakeClock(), subs=[sub("s", ordering="key", cap=2), sub("t")])
    mine = [work(i) for i in range(4)]
    other = work(9, sub_id="t")
    for w in (*mine, other):
        s.add(w)
    assert list(s.starts(lambda w: True)) == [mine[0], mine[1], other]
    assert list(s.unstarted()) == mine[2:]
    s.ended(mine[0])
    assert list(s.starts(lambda w: True)) == [mine[2]]
    s.ended(other)  # another subscription's end frees none of this one's slots
    assert list(s.starts(lambda w: True)) == []
    s.ended(mine[1])
    assert list(s.starts(lambda w: True)) == [mine[3]]


def test_the_cap_follows_the_scope():
    assert sub("s", ordering="endpoint", cap=50).in_flight_cap == 1
    assert sub("s", ordering="key").in_flight_cap == 10
    assert sub("s", ordering="none", cap=3).in_flight_cap == 3


def test_dropping_partitions_forgets_their_work_everywhere():
    clock = FakeClock()
    s = scheduler(clock, per_ws=1, subs=[sub("s"), sub("r", rate=1.0)])
    busy, waiting = work(1, partition=1), work(2, partition=1)
    timed_first, timed = work(3, sub_id="r", ws="w2"), work(4, sub_id="r", ws="w2", partition=1)
    kept = work(5, partition=0, ws="w3")
    for w in (busy, waiting, timed_first, timed, kept):
        s.add(w)
    list(s.starts(lambda w: w is not kept))
    s.add(kept)
    s.drop({1})
    assert list(s.unstarted()) == [kept]


def test_delay_queues_pause_until_due_and_release_in_order():
    consumer = FakeConsumer()
    queues = DelayQueues(consumer)  # type: ignore[arg-type]
    first = Work(DeliveryTask("m1", "s", "ws", "e", "x", b"", due_ms=2000), "retry.1s", 0, 0)
    second = Work(DeliveryTask("m2", "s", "ws", "e", "x", b"", due_ms=1500), "retry.1s", 0, 1)
    queues.add(first, 1000)
    queues.add(second, 1000)
    assert consumer.paused == {("retry.1s", 0)}
    released: list[Work] = []
    queues.release(1600, released.append)
    assert released == []  # the head is not due: nothing overtakes it
    queues.release(2000, released.append)
    assert released == [first, second] and consumer.paused == set()


PER_TASK = 100 + HELD_TASK_OVERHEAD  # a held task with a 100-byte body


def read_ahead(consumer: FakeConsumer, tasks: int, tally: Tally) -> ReadAhead:
    """A read-ahead budget of ``tasks`` such tasks over one ``deliveries`` partition."""
    return ReadAhead(
        consumer=consumer,  # type: ignore[arg-type]
        budget=PER_TASK * tasks,
        max_in_flight=1,
        clock=FakeClock(),
        metrics=Metrics(),
        tally=tally,
        deliveries=lambda: [TopicPartition("deliveries", 0)],
    )


def test_read_ahead_pauses_past_the_budget_and_resumes_below_half():
    consumer, tally = FakeConsumer(), Tally()
    ahead = read_ahead(consumer, 4, tally)
    for _ in range(5):
        tally.hold(PER_TASK)
    assert ahead.batch() == POLL_BATCH
    ahead.check(lambda excess: 0)  # nothing could be spilled
    assert ahead.paused and consumer.paused == {("deliveries", 0)}
    for _ in range(3):
        tally.release(PER_TASK)
    ahead.check(lambda excess: 0)
    assert ahead.paused  # not yet below half the budget
    tally.release(PER_TASK)
    ahead.check(lambda excess: 0)
    assert not ahead.paused and consumer.paused == set()
    for _ in range(10):
        tally.hold(PER_TASK)
    assert ahead.batch() == TRICKLE_BATCH


def test_a_refused_promotion_passes_the_free_slot_on():
    # After a restart, replayed copies of settled deliveries are refused at the door: each
    # one promoted into a freed workspace slot must hand that slot to the next waiting work.
    s = scheduler(FakeClock(), per_ws=1)
    a, b, c = work(1), work(2), work(3)
    for w in (a, b, c):
        s.add(w)
    assert list(s.starts(lambda w: True)) == [a]
    s.ended(a)
    assert list(s.starts(lambda w: w is not b)) == [c]
    assert list(s.unstarted()) == []


def test_a_workspace_serves_its_subscriptions_in_turn():
    s = scheduler(FakeClock(), per_ws=1, subs=[sub("flood"), sub("o", ordering="endpoint")])
    flood = [work(i, sub_id="flood") for i in range(50)]
    ordered = work(99, sub_id="o")
    for w in (*flood, ordered):
        s.add(w)
    started = list(s.starts(lambda w: True))
    assert started == [flood[0]]
    s.ended(flood[0])
    assert list(s.starts(lambda w: True)) == [flood[1]]
    s.ended(flood[1])
    assert list(s.starts(lambda w: True)) == [ordered]  # not behind the other 48


def test_a_slot_given_back_by_a_capped_or_limited_work_goes_to_the_next():
    s = scheduler(FakeClock(), per_ws=1, subs=[sub("r", rate=1.0), sub("t")])
    r1, r2, t = work(1, sub_id="r"), work(2, sub_id="r"), work(3, sub_id="t")
    for w in (r1, r2, t):
        s.add(w)
    assert list(s.starts(lambda w: True)) == [r1]
    s.ended(r1)
    # r2 must wait for its rate limit: the workspace's slot goes to t meanwhile.
    assert list(s.starts(lambda w: True)) == [t]


def test_dropping_a_promoted_work_promotes_the_next():
    s = scheduler(FakeClock(), per_ws=1)
    a, b, c = work(1), work(2, partition=1), work(3)
    for w in (a, b, c):
        s.add(w)
    assert list(s.starts(lambda w: True)) == [a]
    s.ended(a)  # b is promoted into the free slot...
    s.drop({1})  # ...and its partition is revoked before it starts
    assert list(s.starts(lambda w: True)) == [c]


def test_read_ahead_spills_past_three_quarters_down_to_half_and_does_not_pause():
    consumer, tally = FakeConsumer(), Tally()
    ahead = read_ahead(consumer, 8, tally)
    for _ in range(7):  # 7/8 of the budget: over three quarters
        tally.hold(PER_TASK)
    asked: list[int] = []

    def spill(excess: int) -> int:
        asked.append(excess)
        for _ in range(4):  # four tasks went to parked
            tally.release(PER_TASK)
        return PER_TASK * 4

    ahead.check(spill)
    assert asked == [PER_TASK * 3]  # down to half the budget
    assert ahead.held == PER_TASK * 3 and not ahead.paused and consumer.paused == set()
    ahead.check(spill)  # under three quarters: nothing to do
    assert asked == [PER_TASK * 3]


def test_a_spill_that_frees_nothing_is_not_tried_again_at_once():
    consumer, tally = FakeConsumer(), Tally()
    ahead = read_ahead(consumer, 8, tally)
    for _ in range(7):
        tally.hold(PER_TASK)
    asked: list[int] = []
    ahead.check(lambda excess: asked.append(excess) or 0)
    ahead.check(lambda excess: asked.append(excess) or 0)
    assert len(asked) == 1  # the next try waits: finding nothing looked at every queue


def test_take_back_takes_the_longest_queue_newest_first_while_wanted():
    s = scheduler(
        FakeClock(), subs=[sub("s", ordering="key", cap=1), sub("t", ordering="key", cap=1)]
    )
    mine = [work(i) for i in range(5)]
    other = [work(10 + i, sub_id="t") for i in range(3)]
    for w in (*mine, *other):
        s.add(w)
    list(s.starts(lambda w: True))  # one of each runs, the rest wait for their cap
    assert s.queued("s") == 4 and s.queued("t") == 2
    taken = list(s.take_back(lambda w: w.task.seq != 1))
    assert taken == [mine[4], mine[3], mine[2], other[2], other[1]]
    assert s.queued("s") == 1 and s.queued("t") == 0
    assert list(s.unstarted()) == [mine[1]]
    # What stays still starts when a slot frees.
    s.ended(mine[0])
    assert list(s.starts(lambda w: True)) == [mine[1]]


def test_take_back_reaches_works_waiting_for_their_workspace():
    s = scheduler(FakeClock(), per_ws=1, subs=[sub("s", ordering="key")])
    works = [work(i) for i in range(4)]
    for w in works:
        s.add(w)
    assert list(s.starts(lambda w: True)) == [works[0]]
    gen = s.take_back(lambda w: True)
    assert next(gen) is works[3]
    gen.close()  # stop taking: the rest stays, in order
    assert list(s.unstarted()) == works[1:3]
    assert list(s.take_back(lambda w: True)) == [works[2], works[1]]
    assert list(s.unstarted()) == [] and s.queued("s") == 0
