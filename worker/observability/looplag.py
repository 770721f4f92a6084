"""The event loop's lag: how long the loop was blocked, measured from the loop itself.

Everything a worker does runs on one event loop (consuming, attempts, ``/metrics``,
``/healthz``), so a call that blocks it (a broker round trip, a long decode) delays all of it.
:class:`LoopLagMonitor` sleeps ``interval_s`` again and again and records how much later than
asked each sleep woke up, in ``webhook_event_loop_lag_seconds``: a few milliseconds on a
healthy loop; a block of 300 ms that covers a wake-up shows as about 300 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from worker.observability.metrics import Metrics

__all__ = ["INTERVAL_S", "LoopLagMonitor"]

# Short enough that most stalls cover a wake-up, long enough to cost nothing (20 wake-ups a second).
INTERVAL_S = 0.05


class LoopLagMonitor:
    """A task on the running loop that samples its lag into ``metrics`` until stopped."""

    def __init__(self, metrics: Metrics, interval_s: float = INTERVAL_S) -> None:
        self._metrics = metrics
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sampling on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        interval = self._interval_s
        while True:
            asked = time.monotonic() + interval
            await asyncio.sleep(interval)
            self._metrics.loop_lag(time.monotonic() - asked)
