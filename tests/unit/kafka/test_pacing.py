"""The consumer loops' naps: short while records flow, longer once idle, ended by wake()."""

from __future__ import annotations

import asyncio

from worker.kafka.pacing import BUSY_NAP_S, IDLE_NAP_S, QUIET_AFTER, IdlePacer, Nap


def test_naps_grow_only_after_a_quiet_spell() -> None:
    pacer = IdlePacer()
    assert pacer.pause(True) == 0.0
    assert {pacer.pause(False) for _ in range(QUIET_AFTER)} == {BUSY_NAP_S}
    assert pacer.pause(False) == IDLE_NAP_S
    assert pacer.pause(True) == 0.0  # records again: back to short naps
    assert pacer.pause(False) == BUSY_NAP_S


def test_wake_ends_a_nap_and_an_unwoken_nap_ends_on_time() -> None:
    async def main() -> tuple[bool, bool]:
        nap = Nap()
        long_nap = asyncio.ensure_future(nap.take(60))
        await asyncio.sleep(0)
        nap.wake()
        await asyncio.wait_for(long_nap, 5)  # would take 60 s unless woken
        nap.wake()  # nothing to wake: harmless
        short = asyncio.ensure_future(nap.take(0.01))
        await asyncio.wait_for(short, 5)
        return long_nap.done(), short.done()

    assert asyncio.run(main()) == (True, True)
