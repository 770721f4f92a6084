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
    """One consumed record."""

    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    partition: int
    offset: int


def produce_json(
    bootstrap: str,
    topic: str,
    values: Iterable[Any],
    key: str | bytes | Callable[[Any], str] | None = None,
    raw: bool = False,
) -> None:
    """Produce ``values`` as JSON (or as given bytes with ``raw``) and flush.

    ``key`` is one key for every record, or a function of the value giving its key.
    """
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "enable.idempotence": True}
    )
    for value in values:
        data = value if raw else orjson.dumps(value)
        k = key(value) if callable(key) else key
        if isinstance(k, str):
            k = k.encode()
        while True:
            try:
                producer.produce(topic, data, k)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(30) == 0


def consume_all(bootstrap: str, topic: str, timeout: float = 15) -> list[Record]:
    """Every record of ``topic`` from the beginning to its end, partition by partition.

    The end is librdkafka's partition-EOF event for each partition. Fails when some partition
    does not reach its end in time.
    """
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
                headers = {name: data or b"" for name, data in msg.headers() or []}
                out.append(Record(msg.key(), msg.value(), headers, msg.partition(), msg.offset()))
        assert not pending, f"did not reach the end of {topic} {sorted(pending)}"
        return out
    finally:
        consumer.close()
