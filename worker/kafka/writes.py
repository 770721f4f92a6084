"""Producing with back-pressure: a full local queue waits for room instead of failing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

__all__ = ["produce", "produce_acked"]


def produce(
    producer: Producer,
    topic: str,
    value: bytes | None,
    key: bytes | None,
    on_delivery: Callable[[KafkaError | None, Message], None] | None = None,
    partition: int | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    """Produce, waiting for room when the local queue is full (back-pressure, not loss)."""
    kwargs: dict[str, Any] = {"on_delivery": on_delivery} if on_delivery else {}
    if partition is not None:
        kwargs["partition"] = partition
    if headers:
        kwargs["headers"] = headers
    while True:
        try:
            producer.produce(topic, value, key, **kwargs)
            return
        except BufferError:
            producer.poll(0.05)


def produce_acked(
    producer: Producer, topic: str, value: bytes | None, key: bytes, timeout_s: float = 30.0
) -> tuple[int, int]:
    """Produce one record and wait for the broker's acknowledgement (flushes the producer);
    returns its (partition, offset); raises ``RuntimeError`` when it fails or times out."""
    errors: list[str] = []
    where: list[tuple[int, int]] = []

    def acked(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            where.append((msg.partition() or 0, msg.offset() or 0))

    produce(producer, topic, value, key, acked)
    if producer.flush(timeout_s) or errors or not where:
        raise RuntimeError(f"writing to {topic} failed: {errors or 'timed out'}")
    return where[0]
