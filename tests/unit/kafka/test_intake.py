"""Polled records are handed out a partition at a time in turn, each partition in its order;
a partition with many waiting is paused, and resumed once few are left."""

from __future__ import annotations

import itertools
from typing import Any, cast

from confluent_kafka import Consumer, Message, TopicPartition
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.kafka.intake import FairIntake


class Calls:
    """The consumer's pause and resume calls, as ``(action, [(topic, partition)])``."""

    def __init__(self) -> None:
        self.log: list[tuple[str, list[tuple[str, int]]]] = []

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.log.append(("pause", sorted((tp.topic, tp.partition) for tp in partitions)))

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.log.append(("resume", sorted((tp.topic, tp.partition) for tp in partitions)))


def records(topic: str, partition: int, offsets: range) -> list[Message]:
    return [Message(topic=topic, partition=partition, offset=o, value=b"") for o in offsets]


def where(message: Message) -> tuple[Any, Any, Any]:
    return message.topic(), message.partition(), message.offset()


def intake(calls: Calls | None = None, **options: Any) -> FairIntake:
    options.setdefault("clock", lambda: 0.0)  # a slice that never ends
    return FairIntake(cast(Consumer, calls or Calls()), **options)


def test_partitions_take_turns_a_quantum_each_in_their_own_order() -> None:
    polled = intake(quantum=4)
    polled.add(records("flood", 0, range(10)) + records("calm", 0, range(2)))
    handled: list[tuple[Any, Any, Any]] = []
    assert polled.handle(lambda m: handled.append(where(m))) == 12
    assert handled == (
        [("flood", 0, o) for o in range(4)]
        + [("calm", 0, 0), ("calm", 0, 1)]
        + [("flood", 0, o) for o in range(4, 10)]
    )
    assert len(polled) == 0


def test_a_step_stops_when_its_slice_is_spent() -> None:
    now = [0.0]

    def clock() -> float:
        now[0] += 0.001
        return now[0]

    polled = intake(quantum=100, slice_s=0.0025, clock=clock)
    polled.add(records("t", 0, range(10)))
    seen: list[Message] = []
    # Read at 1 ms (the deadline: 3.5 ms), then after each record: the third reads 4 ms.
    assert polled.handle(seen.append) == 3
    assert len(polled) == 7
    while polled:
        polled.handle(seen.append)
    assert [m.offset() for m in seen] == list(range(10))


def test_a_partition_with_many_waiting_is_paused_and_resumed_once_few_are_left() -> None:
    calls = Calls()
    polled = intake(calls, high=8, low=3, quantum=2, slice_s=0.0)
    polled.add(records("flood", 1, range(7)))
    assert calls.log == []
    polled.add(records("flood", 1, range(7, 10)) + records("calm", 0, range(2)))
    assert calls.log == [("pause", [("flood", 1)])] and polled.paused == {("flood", 1)}
    while len(polled) > 4:  # handle() takes one record a step (a slice of 0)
        polled.handle(lambda m: None)
    assert calls.log == [("pause", [("flood", 1)])]
    while polled:
        polled.handle(lambda m: None)
    assert calls.log == [("pause", [("flood", 1)]), ("resume", [("flood", 1)])]
    assert polled.paused == frozenset()


def test_a_partition_paused_by_someone_else_is_left_to_them() -> None:
    calls = Calls()
    polled = intake(calls, high=2, low=0, held=lambda topic, partition: topic == "held")
    polled.add(records("held", 0, range(3)) + records("free", 0, range(3)))
    polled.handle(lambda m: None)
    assert calls.log == [
        ("pause", [("free", 0), ("held", 0)]),
        ("resume", [("free", 0)]),
    ]


def test_records_of_a_dropped_partition_are_not_handled() -> None:
    polled = intake(quantum=3)
    polled.add(records("a", 0, range(6)) + records("b", 0, range(6)))
    handled: list[tuple[Any, Any, Any]] = []

    def handle(message: Message) -> None:
        handled.append(where(message))
        if message.offset() == 1 and message.topic() == "a":
            polled.drop([("a", 0)])  # e.g. held at this record: read again after a seek

    polled.handle(handle)
    assert handled == [("a", 0, 0), ("a", 0, 1)] + [("b", 0, o) for o in range(6)]
    assert len(polled) == 0
    polled.add(records("a", 0, range(1, 3)))
    polled.drop([("b", 0)])  # nothing waits for it: nothing to do
    assert polled.handle(lambda m: handled.append(where(m))) == 2


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(0, 3), st.integers(1, 40)),
            st.tuples(st.just("handle"), st.integers(1, 30), st.just(0)),
            st.tuples(st.just("drop"), st.integers(0, 3), st.just(0)),
        ),
        max_size=60,
    )
)
def test_every_record_is_handled_once_in_its_partition_order(
    steps: list[tuple[str, int, int]],
) -> None:
    calls = Calls()
    ticks = [0]

    def clock() -> float:  # each reading 1 ms on: a step of n handles about n records
        ticks[0] += 1
        return ticks[0] / 1000

    polled = FairIntake(cast(Consumer, calls), quantum=3, high=12, low=4, clock=clock)
    next_offset = [0, 0, 0, 0]
    waiting: list[list[int]] = [[], [], [], []]  # the model: offsets waiting, per partition
    handled: list[tuple[int, int]] = []
    for action, p, n in steps:
        if action == "add":
            offsets = range(next_offset[p], next_offset[p] + n)
            next_offset[p] += n
            polled.add(records("t", p, offsets))
            waiting[p].extend(offsets)
        elif action == "drop":
            polled.drop([("t", p)])  # revoked, or held: its pause is not ours any more
            waiting[p].clear()
            calls.log = [(a, [k for k in keys if k != ("t", p)]) for a, keys in calls.log]
        else:
            before = len(handled)
            polled.handle(lambda m: handled.append((m.partition(), m.offset())))
            for part, offset in handled[before:]:
                assert waiting[part] and waiting[part][0] == offset, "in order, once"
                waiting[part].pop(0)
        assert len(polled) == sum(map(len, waiting))
        for key in polled.paused:  # paused only while it holds more than LOW
            assert len(waiting[key[1]]) > 4
    for p in range(4):  # each partition paused, resumed, paused ...: never twice in a row
        actions = [action for action, keys in calls.log if ("t", p) in keys]
        assert all(a != b for a, b in itertools.pairwise(actions))
    while polled:
        before = len(handled)
        polled.handle(lambda m: handled.append((m.partition(), m.offset())))
        for part, offset in handled[before:]:
            assert waiting[part][0] == offset
            waiting[part].pop(0)
    assert waiting == [[], [], [], []]
    assert polled.paused == frozenset(), "every partition it paused is resumed once drained"
