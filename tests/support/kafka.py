"""Producing and reading topics from tests with the real client."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition


@dataclass
class Record:
    key: bytes | None
    value: bytes | None
    partition: int
    offset: int


def produce_json(
    bootstrap: str,
    topic: str,
    values: Iterable[Any],
    key: Callable[[Any], str] | None = None,
    raw: bool = False,
) -> None:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "enable.idempotence": True}
    )
    for value in values:
        data = value if raw else orjson.dumps(value)
        k = key(value).encode() if key else None
        while True:
            try:
                producer.produce(topic, data, k)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(30) == 0


def consume_all(bootstrap: str, topic: str, timeout: float = 15) -> list[Record]:
    """Every record of ``topic`` from the beginning to its end (partition-EOF events)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        parts = sorted(meta.partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        pending = set(parts)
        out: list[Record] = []
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.2):
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        pending.discard(msg.partition())
                    continue
                out.append(Record(msg.key(), msg.value(), msg.partition(), msg.offset()))
        assert not pending, f"did not reach the end of {topic} {sorted(pending)}"
        return out
    finally:
        consumer.close()
