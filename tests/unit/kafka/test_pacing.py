"""The consumer loops' naps: short while records flow, longer once idle."""

from __future__ import annotations

from worker.kafka.pacing import BUSY_NAP_S, IDLE_NAP_S, QUIET_AFTER, IdlePacer


def test_naps_grow_only_after_a_quiet_spell() -> None:
    pacer = IdlePacer()
    assert pacer.pause(True) == 0.0
    assert {pacer.pause(False) for _ in range(QUIET_AFTER)} == {BUSY_NAP_S}
    assert pacer.pause(False) == IDLE_NAP_S
    assert pacer.pause(True) == 0.0  # records again: back to short naps
    assert pacer.pause(False) == BUSY_NAP_S
