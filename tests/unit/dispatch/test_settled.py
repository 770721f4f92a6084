from worker.dispatch.dedupe import Settled


def test_settled_ids_are_remembered_for_the_window_then_forgotten():
    settled = Settled(window_ms=1000)
    settled.add("msg_a", 10_000)
    settled.add("msg_b", 10_500)
    settled.add("msg_a", 10_900)  # already known: keeps its first time
    assert "msg_a" in settled and "msg_b" in settled and len(settled) == 2
    settled.expire(11_000)  # the window reaches back to 10,000: both stay
    assert len(settled) == 2
    settled.expire(11_001)
    assert "msg_a" not in settled and "msg_b" in settled
    settled.expire(12_000)
    assert len(settled) == 0


def test_a_zero_window_remembers_nothing():
    settled = Settled(window_ms=0)
    settled.add("msg_a", 1)
    assert "msg_a" not in settled and len(settled) == 0
