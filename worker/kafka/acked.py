"""Awaiting the broker's acknowledgement from asyncio without blocking the loop.

:class:`AckedProducer` wraps one producer: ``send`` returns once the broker acknowledged the
record (or raises :class:`WriteFailed`), while a background thread serves the producer's
delivery callbacks. Many requests share one producer and its batches (``linger.ms``), so an
acknowledged write costs a few milliseconds, not a flush each.
"""

from __future__ import annotations

import asyncio
import threading

from confluent_kafka import KafkaError, Message, Producer

from worker.errors import BackendError
from worker.kafka.writes import produce

__all__ = ["AckedProducer", "WriteFailed", "Written"]


class WriteFailed(BackendError):
    """The broker did not acknowledge the record (error or delivery timeout)."""


class Written:
    """Where an acknowledged record went."""

    __slots__ = ("offset", "partition")

    def __init__(self, partition: int, offset: int) -> None:
        self.partition = partition
        self.offset = offset


class AckedProducer:
    """``await send(...)`` = produced and acknowledged. Call :meth:`start` then :meth:`stop`."""

    def __init__(self, producer: Producer, name: str = "acked-producer") -> None:
        self.producer = producer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, flush_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.producer.flush(flush_s)

    async def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Written:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Written] = loop.create_future()

        def settle(err: KafkaError | None, msg: Message) -> None:
            # On the serving thread: hand the outcome to the loop.
            if err is not None:
                outcome: Written | WriteFailed = WriteFailed(f"writing to {topic} failed: {err}")
            else:
                outcome = Written(msg.partition() or 0, msg.offset() or 0)
            loop.call_soon_threadsafe(_settle, future, outcome)

        produce(self.producer, topic, value, key, settle, headers=headers)
        return await future

    def _serve(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)


def _settle(future: asyncio.Future[Written], outcome: Written | WriteFailed) -> None:
    if future.done():
        return
    if isinstance(outcome, WriteFailed):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
