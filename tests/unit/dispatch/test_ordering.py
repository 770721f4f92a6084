from worker.dispatch.backlog import Tally
from worker.dispatch.ordering import Decision, HeadRef, Lane, Work
from worker.model import DeliveryTask


def work(seq: int, *, hop: int = 0, topic: str = "deliveries") -> Work:
    task = DeliveryTask(f"msg_{seq}", "sub", "ws", f"e{seq}", "x.created", b"{}", seq=seq, hop=hop)
    return Work(task, topic, 0, seq)


def test_one_in_flight_then_waiting_in_order():
    lane = Lane(Tally())
    first, second, third = work(1), work(2), work(3)
    assert lane.on_fresh(first) is Decision.ATTEMPT
    assert lane.on_fresh(second) is Decision.WAIT
    assert lane.on_fresh(third) is Decision.WAIT
    assert lane.resolved() is False
    assert lane.next_work("parked", 0, 0) is second
    lane.resolved()
    assert lane.next_work("parked", 0, 0) is third
    lane.resolved()
    assert lane.next_work("parked", 0, 0) is None and lane.idle


def test_failure_makes_a_head_and_parks_followers_once_durable():
    lane = Lane(Tally())
    first = work(1)
    lane.on_fresh(first)
    lane.on_fresh(work(2))
    copy = DeliveryTask(**{**_fields(first.task), "hop": 1, "attempt": 1})
    lane.set_head(copy)
    # Until the head marker is durable, new tasks are held, not parked.
    assert lane.on_fresh(work(3)) is Decision.HOLD
    held, due = lane.head_marker_durable(HeadRef.of(copy))
    assert [w.task.seq for w in held] == [2, 3] and due is None
    assert parked(lane) == [2, 3]
    assert lane.on_fresh(work(4)) is Decision.PARK
    # Nothing may start while the head waits in a delay topic.
    assert lane.next_work("parked", 0, 0) is None
    # Only the exact copy named by the head is attempted; an older copy is stale.
    assert lane.on_retry_due(work(1, hop=0, topic="retry")) is Decision.DROP
    retry = Work(copy, "retry", 0, 7)
    assert lane.on_retry_due(retry) is Decision.ATTEMPT
    assert lane.resolved() is True  # the head marker must be cleared
    nxt = lane.next_work("parked", 0, 0)
    assert nxt is not None and nxt.from_parked and nxt.task.seq == 2
    lane.resolved()
    assert parked(lane) == [3, 4]


def test_a_retry_due_before_its_head_marker_is_durable_waits_for_it():
    """Under a broker failover the head marker's write can take seconds while the retry copy
    (200 ms) is already due. Attempted at once and resolved, its head's tombstone preceded the
    marker, and the marker's late acknowledgement marked the resolved head durable: every
    later task of the key was parked and never attempted (39 of 40 events of a key stuck in
    the three-broker failover test)."""
    lane = Lane(Tally())
    first = work(1)
    lane.on_fresh(first)
    copy = DeliveryTask(**{**_fields(first.task), "hop": 1})
    lane.set_head(copy)
    retry = Work(copy, "retry", 0, 7)
    assert lane.on_retry_due(retry) is Decision.HOLD
    assert lane.on_retry_due(Work(copy, "retry", 0, 7)) is Decision.DROP  # a second copy
    assert lane.on_fresh(work(2)) is Decision.HOLD
    held, due = lane.head_marker_durable(HeadRef.of(copy))
    assert [w.task.seq for w in held] == [2] and due is retry and lane.busy is retry
    assert lane.resolved() is True
    nxt = lane.next_work("parked", 0, 0)
    assert nxt is not None and nxt.task.seq == 2  # the lane goes on


def test_the_acknowledgement_of_a_marker_no_longer_the_head_changes_nothing():
    lane = Lane(Tally())
    lane.on_fresh(work(1))
    first = DeliveryTask(**{**_fields(work(1).task), "hop": 1})
    lane.set_head(first)
    lane.head = None  # resolved meanwhile (as the code before the fix let happen)
    assert lane.head_marker_durable(HeadRef.of(first)) == ([], None)
    assert not lane.head_durable and lane.on_fresh(work(2)) is Decision.ATTEMPT


def test_replayed_tasks_at_or_below_durable_seq_are_dropped():
    lane = Lane(Tally())
    lane.on_fresh(work(5))
    copy = DeliveryTask(**{**_fields(work(5).task), "hop": 1})
    lane.set_head(copy)
    lane.head_marker_durable(HeadRef.of(copy))
    assert lane.on_fresh(work(5)) is Decision.DROP
    assert lane.on_fresh(work(3)) is Decision.DROP
    assert lane.on_fresh(work(6)) is Decision.PARK
    assert lane.on_fresh(work(6)) is Decision.DROP


def test_parked_task_that_fails_becomes_the_head():
    lane = Lane(Tally())
    lane.park(work(2).task)
    lane.park(work(3).task)
    nxt = lane.next_work("parked", 0, 0)
    assert nxt is not None and nxt.task.seq == 2
    lane.set_head(DeliveryTask(**{**_fields(nxt.task), "hop": 1}))
    assert parked(lane) == [3]
    assert lane.head is not None and lane.head.seq == 2


def parked(lane: Lane) -> list[int]:
    return lane.backlog.seqs() if lane.backlog is not None else []


def test_a_parked_body_leaves_memory_once_durable_and_is_read_back_for_its_turn():
    tally = Tally()
    lane = Lane(tally)
    lane.on_fresh(work(1))
    copy = DeliveryTask(**{**_fields(work(1).task), "hop": 1})
    lane.set_head(copy)
    lane.head_marker_durable(HeadRef.of(copy))
    assert lane.on_fresh(work(2)) is Decision.PARK and lane.on_fresh(work(3)) is Decision.PARK
    assert tally.parked == 2
    lane.acked(2, 100)
    lane.acked(3, 101)
    assert lane.backlog is not None and lane.backlog.wanted(10) == [(2, 100), (3, 101)]
    assert lane.on_retry_due(Work(DeliveryTask(**{**_fields(work(1).task), "hop": 1}), "r", 0, 0))
    assert lane.resolved() is True
    assert lane.next_work("parked", 0, 0) is None and lane.reading  # must be read back
    lane.backlog.fill(2, work(2).task)
    assert tally.read_back == 1
    nxt = lane.next_work("parked", 0, 0)
    assert nxt is not None and nxt.from_parked and nxt.task.seq == 2 and not lane.reading
    lane.resolved()
    assert (tally.parked, tally.read_back, parked(lane)) == (1, 0, [3])
    lane.forget()
    assert (tally.parked, tally.read_back) == (0, 0)


def test_a_body_in_memory_before_its_ack_is_used_directly():
    lane = Lane(Tally())
    lane.park(work(4).task)  # not yet acknowledged: its body is still here
    nxt = lane.next_work("parked", 0, 0)
    assert nxt is not None and nxt.task.seq == 4


def _fields(task: DeliveryTask) -> dict:
    return {name: getattr(task, name) for name in task.__slots__}


def test_a_spilled_lane_parks_its_next_task_and_followers_in_seq_order():
    tally = Tally()
    lane = Lane(tally)
    first = work(1)
    assert lane.on_fresh(first) is Decision.ATTEMPT  # waiting for a slot, not started
    lane.on_fresh(work(2))
    lane.on_fresh(work(3))
    assert lane.spillable
    assert [w.task.seq for w in lane.spill()] == [1, 2, 3]
    assert lane.busy is None and not lane.waiting and lane.head is None
    assert parked(lane) == [1, 2, 3] and tally.parked == 3
    # Parked with no head: what follows parks, a replay of what it holds is dropped...
    assert lane.on_fresh(work(4)) is Decision.PARK
    assert lane.on_fresh(work(2)) is Decision.DROP
    # ...and its turn attempts them in seq order (here from memory: not yet acknowledged).
    nxt = lane.next_work("parked", 0, 0)
    assert nxt is not None and nxt.from_parked and nxt.task.seq == 1
    assert not lane.spillable  # its next task comes from parked now
    lane.resolved()
    nxt = lane.next_work("parked", 0, 0)
    assert nxt is not None and nxt.task.seq == 2


def test_a_lane_whose_task_is_read_back_or_retrying_is_not_spillable():
    lane = Lane(Tally())
    lane.on_fresh(work(1))
    lane.set_head(DeliveryTask(**{**_fields(work(1).task), "hop": 1}))
    assert not lane.spillable


def test_bodies_read_back_are_released_when_the_lane_fails_again():
    tally = Tally()
    lane = Lane(tally)
    for seq, offset in ((1, 10), (2, 11), (3, 12)):
        lane.park(work(seq).task)
        lane.acked(seq, offset)
    assert lane.next_work("parked", 0, 0) is None and lane.reading
    assert lane.backlog is not None
    for seq in (1, 2, 3):
        lane.backlog.fill(seq, work(seq).task)
    assert tally.read_back == 3
    nxt = lane.next_work("parked", 0, 0)
    assert nxt is not None and nxt.task.seq == 1
    lane.set_head(DeliveryTask(**{**_fields(nxt.task), "hop": 1}))
    # 2 and 3 wait behind the new head: in parked, not in memory (nor in the budget).
    assert tally.read_back == 0 and parked(lane) == [2, 3]
    assert lane.backlog.wanted(10) == [(2, 11), (3, 12)]
