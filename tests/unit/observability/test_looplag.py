"""The loop-lag monitor sees a deliberate block of the event loop in its histogram."""

from __future__ import annotations

import asyncio
import time

from worker.observability.looplag import LoopLagMonitor
from worker.observability.metrics import Metrics

NAME = "webhook_event_loop_lag_seconds"


def samples(metrics: Metrics) -> dict[str, float]:
    """The histogram's cumulative bucket counts by ``le``, and ``count``."""
    out: dict[str, float] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == f"{NAME}_bucket":
                out[sample.labels["le"]] = sample.value
            elif sample.name == f"{NAME}_count":
                out["count"] = sample.value
    return out


def test_a_300_ms_block_of_the_loop_is_observed() -> None:
    metrics = Metrics()

    async def run() -> tuple[dict[str, float], dict[str, float]]:
        monitor = LoopLagMonitor(metrics, interval_s=0.01)
        monitor.start()
        await asyncio.sleep(0.3)
        calm = samples(metrics)
        time.sleep(0.3)  # blocks the loop, as a synchronous broker call would
        await asyncio.sleep(0.1)
        await monitor.stop()
        return calm, samples(metrics)

    calm, after = asyncio.run(run())
    assert calm["count"] >= 5, calm
    # Before the block most wake-ups were on time (a loaded machine delays a few).
    assert calm["0.05"] >= calm["count"] / 2, calm
    # The block: a wake-up at least 250 ms late that was not there before.
    late_before = calm["count"] - calm["0.25"]
    late_after = after["count"] - after["0.25"]
    assert late_after - late_before >= 1, after
    assert after["+Inf"] - after["5.0"] == 0, after  # and not taken for a longer one


def test_stop_ends_the_sampling() -> None:
    metrics = Metrics()

    async def run() -> float:
        monitor = LoopLagMonitor(metrics, interval_s=0.01)
        monitor.start()
        await asyncio.sleep(0.05)
        await monitor.stop()
        stopped = samples(metrics)["count"]
        await asyncio.sleep(0.05)
        assert samples(metrics)["count"] == stopped
        return stopped

    assert asyncio.run(run()) >= 1
