from worker.dispatch.disabling import FailureTracker
from worker.dispatch.limits import RateLimiter, WorkspaceSlots


def tracker(calls: list) -> FailureTracker:
    return FailureTracker(
        max_failures=3, max_failing_ms=60_000, disable=lambda sub, why: calls.append((sub, why))
    )


def test_consecutive_failures_disable_once():
    calls: list = []
    t = tracker(calls)
    assert not t.failure("s", 0) and not t.failure("s", 1)
    t.success("s")  # a success resets the streak
    assert not t.failure("s", 2) and not t.failure("s", 3)
    assert t.failure("s", 4)
    assert not t.failure("s", 5)  # reported once per streak
    assert calls == [("s", "3 consecutive failed attempts")]
    t.reset("s")  # `subs enable`
    assert not t.failure("s", 6)


def test_failing_for_a_period_and_gone():
    calls: list = []
    t = FailureTracker(
        max_failures=0, max_failing_ms=60_000, disable=lambda sub, why: calls.append((sub, why))
    )
    assert not t.failure("s", 0)
    assert t.failure("s", 60_000)
    assert t.failure("g", 0, gone=True)
    assert [c[0] for c in calls] == ["s", "g"] and "410" in calls[1][1]


def test_limits():
    slots = WorkspaceSlots(2)
    assert slots.try_take("w") and slots.try_take("w") and not slots.try_take("w")
    assert slots.try_take("other")
    slots.give_back("w")
    assert slots.try_take("w")
    rates = RateLimiter()
    assert [rates.delay("s", 2.0, 0.0) for _ in range(2)] == [0.0, 0.0]
    assert rates.delay("s", 2.0, 0.0) > 0
    assert rates.delay("s", 2.0, 0.5) == 0.0
    assert rates.delay("s", None, 0.0) == 0.0


def test_a_restored_streak_goes_on_counting():
    calls: list = []
    t = tracker(calls)
    t.restore("s", 2, since_ms=0)  # recorded by the previous owner
    assert t.streak("s") == (2, 0)
    assert t.failure("s", 10)  # the third in a row
    assert calls == [("s", "3 consecutive failed attempts")]
    t.restore("s", 1, since_ms=5)  # never lowers what this owner counts
    assert t.streak("s") == (3, 0)
    assert t.success("s") and not t.success("s")  # True only when a streak ended
