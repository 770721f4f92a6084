"""Holding a partition for the Schema Registry: later records of the batch are dropped unread
(the seek reads them again), a partition's back-off doubles up to its cap and starts over once
its record is read, and a revoked partition's hold is forgotten. (Pausing and seeking a real
consumer is shown in tests/integration/inputs/test_schema_registry.py.)"""

from __future__ import annotations

from confluent_kafka import TopicPartition

from worker.inputs.holds import FIRST_BACKOFF_S, MAX_BACKOFF_S, PartitionHolds


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_hold_skips_the_rest_of_its_partition_until_the_held_record_is_read():
    holds = PartitionHolds(Clock())
    holds.hold(None, "t", 0, 10)
    assert holds.skips("t", 0, 11) and holds.skips("t", 0, 500)
    assert not holds.skips("t", 0, 10)  # the held record itself, read again
    assert not holds.skips("t", 1, 11)  # other partitions go on
    holds.read("t", 0, 12)  # a later record does not end the hold
    assert holds.skips("t", 0, 11)
    holds.read("t", 0, 10)
    assert not holds.held and not holds.skips("t", 0, 11)


def test_the_back_off_doubles_per_partition_to_its_cap_and_starts_over_once_read():
    clock = Clock()
    holds = PartitionHolds(clock)
    waits = []
    for _ in range(10):
        holds.hold(None, "t", 0, 10)
        waits.append(holds.held[("t", 0)][1] - clock.now)
    assert waits[:3] == [FIRST_BACKOFF_S, FIRST_BACKOFF_S * 2, FIRST_BACKOFF_S * 4]
    assert waits[-1] == MAX_BACKOFF_S
    # Other partitions held meanwhile do not lengthen this one's wait, nor it theirs.
    holds.hold(None, "t", 1, 3)
    assert holds.held[("t", 1)][1] - clock.now == FIRST_BACKOFF_S
    holds.read("t", 0, 10)
    holds.hold(None, "t", 0, 11)
    assert holds.held[("t", 0)][1] - clock.now == FIRST_BACKOFF_S


def test_resume_is_due_after_the_back_off_and_a_revoked_partition_is_forgotten():
    clock = Clock()
    holds = PartitionHolds(clock)
    holds.hold(None, "t", 0, 10)
    holds.hold(None, "t", 1, 3)
    holds.drop([TopicPartition("t", 1)])
    assert list(holds.held) == [("t", 0)]
    clock.now += MAX_BACKOFF_S
    holds.resume_due(None)  # no consumer: nothing to resume, the hold stays until read
    assert holds.skips("t", 0, 11)
