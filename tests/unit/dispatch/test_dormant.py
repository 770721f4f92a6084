"""Key lanes that only wait are packed into one record and unpacked unchanged when touched."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.dispatch import dormant
from worker.dispatch.backlog import Tally
from worker.dispatch.clock import Clock
from worker.dispatch.dedupe import Settled
from worker.dispatch.disabling import FailureTracker
from worker.dispatch.ordering import HeadRef, Lane, Work, key_digest
from worker.dispatch.partitions import Partitions
from worker.model import DeliveryTask

KEYED = ("sub", key_digest(b"contact/1"))
ENDPOINT = ("sub", None)


def task(seq: int) -> DeliveryTask:
    return DeliveryTask(f"m{seq}", "sub", "ws", "e", "t", b"{}", seq=seq, hop=2)


def waiting_lane(tally: Tally, parked: list[int], *, head: int | None = 3) -> Lane:
    """A lane whose head (if any) is durable and whose parked tasks are all acknowledged."""
    lane = Lane(tally)
    if head is not None:
        lane.head, lane.head_durable, lane.max_seq = HeadRef(f"m{head}", 2, head), True, head
    for i, seq in enumerate(parked):
        lane.park(task(seq))
        lane.acked(seq, 100 + i)
    return lane


def state(lane: Lane) -> tuple[object, ...]:
    backlog = lane.backlog
    return (
        lane.head,
        lane.head_durable,
        lane.max_seq,
        backlog.wanted(1000) if backlog is not None else None,
        lane.busy,
        lane.reading,
    )


@pytest.mark.parametrize(("head", "parked"), [(3, [5, 9, 12]), (3, []), (None, [5, 9])])
def test_a_packed_lane_unpacks_to_the_same_state_and_keeps_its_count(head, parked):
    tally = Tally()
    lane = waiting_lane(tally, parked, head=head)
    assert dormant.packable(lane)
    record = dormant.pack(lane)
    assert dormant.parked_in(record) == len(parked) and tally.parked == len(parked)
    assert state(dormant.unpack(record, tally)) == state(lane)
    assert tally.parked == len(parked)
    assert len(record) < 60 + 16 * len(parked)


def test_only_a_lane_that_only_waits_is_packable():
    tally = Tally()
    assert not dormant.packable(Lane(tally))  # idle: dropped, not packed
    busy = waiting_lane(tally, [5])
    busy.head = None
    busy.busy = Work(task(5), "parked", 0, -1, from_parked=True)
    assert not dormant.packable(busy)
    undurable = waiting_lane(tally, [5])
    undurable.head_durable = False
    assert not dormant.packable(undurable)  # its head marker's callback still holds it
    unacked = waiting_lane(tally, [5])
    unacked.park(task(6))  # written, not yet acknowledged: the body is the only copy
    assert not dormant.packable(unacked)
    read_back = waiting_lane(tally, [5, 6])
    assert read_back.backlog is not None
    read_back.backlog.fill(5, task(5))  # a body in memory
    assert not dormant.packable(read_back)
    reading = waiting_lane(tally, [5])
    reading.reading = True
    assert not dormant.packable(reading)
    long = waiting_lane(tally, list(range(10, 11 + dormant.MAX_PACKED_TASKS)))
    assert not dormant.packable(long)


def partitions() -> Partitions:
    def no_reader():  # pragma: no cover - these tests never assign
        raise AssertionError("no reads here")

    return Partitions(
        topics=None,  # type: ignore[arg-type]
        codec=None,  # type: ignore[arg-type]
        make_reader=no_reader,
        settled=Settled(0),
        clock=Clock(),
        failures=FailureTracker(max_failures=0, max_failing_ms=0, disable=lambda s, r: None),
        lookup=lambda sub_id: None,
    )


def test_settle_packs_a_key_lane_and_a_lookup_unpacks_it():
    parts = partitions()
    lane = parts.lane(0, KEYED)
    lane.head, lane.head_durable, lane.max_seq = HeadRef("m3", 2, 3), True, 3
    lane.park(task(5))
    parts.settle(0, KEYED, lane)
    assert parts.lanes[0]["sub"][KEYED[1]] is lane  # unacknowledged: kept
    lane.acked(5, 100)
    parts.settle(0, KEYED, lane)
    assert parts.lanes[0] == {} and len(parts.packed[(0, "sub")]) == 1
    assert list(parts.all_lanes()) == [] and parts.held_scope(0, "sub") == "key"
    found = parts.find_lane(0, KEYED)
    assert found is not None and found is not lane and state(found) == state(lane)
    assert parts.lane(0, KEYED) is found and parts.tally.parked == 1
    assert parts.packed == {}
    # A Lane object no longer in the table (a stale callback's) is not packed over it.
    parts.settle(0, KEYED, lane)
    assert parts.find_lane(0, KEYED) is found and parts.packed == {}


def test_an_endpoint_lane_is_never_packed_and_losing_a_partition_uncounts_packed_lanes():
    parts = partitions()
    endpoint = parts.lane(0, ENDPOINT)
    endpoint.head, endpoint.head_durable = HeadRef("m1", 1, 1), True
    parts.settle(0, ENDPOINT, endpoint)
    assert parts.lanes[0]["sub"][None] is endpoint and parts.packed == {}
    keyed = parts.lane(0, KEYED)
    keyed.head, keyed.head_durable = HeadRef("m3", 2, 3), True
    for seq in (5, 6):
        keyed.park(task(seq))
        keyed.acked(seq, seq)
    parts.settle(0, KEYED, keyed)
    assert parts.tally.parked == 2
    parts.lose({0})
    assert parts.tally.parked == 0 and parts.lanes == {} and parts.packed == {}


def test_packed_lanes_keep_every_record_by_digest_through_growth():
    table = dormant.PackedLanes()
    records = {key_digest(str(k).encode()): bytes([k % 251]) * (k % 40) for k in range(5000)}
    for digest, record in records.items():
        table.put(digest, record)
    assert len(table) == 5000 and sorted(table.records()) == sorted(records.values())
    gone = list(records)[::3]
    for digest in gone:
        assert table.pop(digest) == records[digest]
        assert table.pop(digest) is None
    assert len(table) == 5000 - len(gone)
    for digest, record in records.items():
        if digest not in gone:
            assert table.pop(digest) == record
    assert len(table) == 0 and table.records() == []


def test_packed_lanes_grow_a_bucket_at_a_time():
    """No put splits more than one bucket: the table never re-puts every lane at once."""
    table = dormant.PackedLanes()
    buckets = len(table._buckets)
    for k in range(20_000):
        table.put(key_digest(str(k).encode()), b"r")
        grown = len(table._buckets) - buckets
        assert grown in (0, 1), f"put {k} added {grown} buckets"
        buckets += grown
        assert len(table) <= 16 * buckets
    assert buckets > 1_000  # it did grow, through several rounds


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 3_000), st.binary(max_size=24)),
        max_size=4_000,
    )
)
def test_packed_lanes_agree_with_a_dict(steps: list[tuple[bool, int, bytes]]):
    """Random puts and pops answer as a dict would, through every split."""
    table = dormant.PackedLanes()
    model: dict[bytes, bytes] = {}
    for put, k, record in steps:
        digest = key_digest(str(k).encode())
        if put and digest not in model:
            table.put(digest, record)
            model[digest] = record
        else:
            assert table.pop(digest) == model.pop(digest, None)
        assert len(table) == len(model)
    assert sorted(table.records()) == sorted(model.values())
    for digest, record in model.items():
        assert table.pop(digest) == record
