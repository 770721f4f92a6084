"""A poll's records handled a time slice a step, in order, at least one a step."""

from __future__ import annotations

from worker.eventloop import answered
from worker.kafka.slices import Slices


class StepClock:
    """A clock that moves ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_batch_is_handled_across_steps_in_order() -> None:
    # 2 ms pass between clock readings: a 5 ms slice takes three records (the third passes it).
    slices: Slices[int] = Slices(slice_s=0.005, clock=StepClock(0.002))
    slices.add(range(7))
    handled: list[int] = []
    counts = []
    while slices:
        counts.append(slices.handle(handled.append))
    assert handled == list(range(7))
    assert counts == [3, 3, 1]


def test_a_record_slower_than_the_slice_still_moves_on() -> None:
    slices: Slices[str] = Slices(slice_s=0.005, clock=StepClock(1.0))
    slices.add(["a", "b"])
    seen: list[str] = []
    assert slices.handle(seen.append) == 1
    assert slices.handle(seen.append) == 1
    assert seen == ["a", "b"]
    assert slices.handle(seen.append) == 0  # nothing left: a step that did nothing


def test_a_quick_batch_is_handled_in_one_step() -> None:
    slices: Slices[int] = Slices(slice_s=0.005, clock=StepClock(0.0))
    slices.add(range(1000))
    assert slices.handle(lambda _: None) == 1000
    assert not slices


def test_keep_drops_the_unwanted_and_keeps_the_order() -> None:
    slices: Slices[int] = Slices(slice_s=0.005, clock=StepClock(0.002))
    slices.add(range(6))
    slices.keep(lambda n: n % 2 == 1)  # e.g. the records of partitions no longer owned go
    handled: list[int] = []
    while slices:
        slices.handle(handled.append)
    assert handled == [1, 3, 5]


def test_a_slice_ends_early_while_an_answered_attempt_waits_to_resume() -> None:
    # 0.3 ms between clock readings: a 2 ms slice takes 7 records, 2 while an answer waits.
    slices: Slices[int] = Slices(slice_s=0.002, clock=StepClock(0.0003))
    slices.add(range(100))
    assert slices.handle(lambda n: None) == 7
    answered().waiting += 1
    try:
        assert slices.handle(lambda n: None) == 2
    finally:
        answered().waiting -= 1
    assert slices.handle(lambda n: None) == 7
