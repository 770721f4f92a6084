"""The run loop every consuming stage shares (the router and the dispatcher).

A stage says what one pass does (``step``), how to finish (``drain``) and what it does on a
rebalance; :class:`StageLoop` does the rest, once: subscribe, call ``step`` without blocking
the event loop, serve the producer's callbacks, store the offsets that outcomes finished,
report lag, nap when idle (woken early by ``wake``), stop on the first fatal write error, and
on the way out drain and close the consumer within a bounded time.

A fatal error is latched (:class:`FatalLatch`): a delivery callback that finds a write failed
records it, the loop raises it after the step, and the process's supervisor restarts the
stage from its committed offsets (nothing is finished past a failed write).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Protocol

from confluent_kafka import Consumer, Producer, TopicPartition

from worker.errors import BackendError
from worker.kafka.clients import close_consumer
from worker.kafka.lag import LagReporter
from worker.kafka.offsets import OffsetBook
from worker.kafka.pacing import IdlePacer

__all__ = ["FatalLatch", "Stage", "StageFailedError", "StageLoop"]

LAG_REPORT_INTERVAL_S = 2.0

Rebalance = Callable[[Consumer, list[TopicPartition]], None]


class StageFailedError(BackendError):
    """A stage's write failed: it stops, and restarts from its committed offsets."""


class FatalLatch:
    """The first fatal error of a stage (later ones add nothing)."""

    __slots__ = ("error",)

    def __init__(self) -> None:
        self.error: str | None = None

    def set(self, error: str) -> None:
        if self.error is None:
            self.error = error

    def check(self) -> None:
        if self.error is not None:
            raise StageFailedError(self.error)


class Stage(Protocol):
    """What a consuming stage supplies to :class:`StageLoop`."""

    def step(self) -> bool:
        """One pass without blocking; True if it did work (no nap before the next)."""

    async def drain(self) -> None:
        """Stop: finish or hand over what is held and flush the producer."""

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None: ...

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None: ...

    def on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None: ...


class StageLoop:
    """Runs one :class:`Stage` over its consumer until ``stop`` is set or a write fails."""

    def __init__(
        self,
        *,
        name: str,
        consumer: Consumer,
        producer: Producer,
        offsets: OffsetBook,
        lag: LagReporter,
        fatal: FatalLatch,
        heartbeat: Callable[[], None] = lambda: None,
        wake: asyncio.Event | None = None,
    ) -> None:
        self._name = name
        self._consumer = consumer
        self._producer = producer
        self._offsets = offsets
        self._lag = lag
        self._fatal = fatal
        self._heartbeat = heartbeat
        self._wake = wake

    async def run(self, stage: Stage, topics: list[str], stop: asyncio.Event) -> None:
        consumer = self._consumer
        consumer.subscribe(
            topics, on_assign=stage.on_assign, on_revoke=stage.on_revoke, on_lost=stage.on_lost
        )
        pacer = IdlePacer()
        next_lag_report = 0.0
        try:
            while not stop.is_set():
                self._heartbeat()
                busy = stage.step()
                self._producer.poll(0)
                self._offsets.store(consumer)
                now = time.monotonic()
                if now >= next_lag_report:
                    next_lag_report = now + LAG_REPORT_INTERVAL_S
                    self._lag.report()
                self._fatal.check()
                await self._nap(pacer.pause(busy))
            await stage.drain()
            self._offsets.store(consumer)
        finally:
            close_consumer(consumer, self._name)  # revokes: the stage's final commit

    async def _nap(self, seconds: float) -> None:
        if not seconds:
            await asyncio.sleep(0)
        elif self._wake is None:
            await asyncio.sleep(seconds)
        else:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), seconds)
