"""Producing input records with keys and headers, and mapping files, for the input-format
tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer

from tests.support.kafka import consume_all
from worker.codec.avro import AvroCodec
from worker.codec.records import RecordCodec
from worker.config import Settings
from worker.kafka.admin import ensure_topics
from worker.kafka.clients import make_admin
from worker.kafka.topics import Topics
from worker.model import InvalidRecord

Raw = tuple[bytes | str | None, bytes | None, dict[str, bytes] | None]  # key, value, headers


def produce_raw(bootstrap: str, topic: str, records: Iterable[Raw], partition: int = 0) -> None:
    """Produce ``(key, value, headers)`` in order to one partition and flush."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for key, value, headers in records:
        producer.produce(
            topic, value, key, partition=partition, headers=list((headers or {}).items())
        )
    assert producer.flush(30) == 0


def json_value(value: Any) -> bytes:
    return orjson.dumps(value)


def write_mapping(directory: Path, text: str) -> str:
    path = directory / "inputs.yaml"
    path.write_text(text)
    return str(path)


def invalid_records(bootstrap: str, prefix: str) -> list[InvalidRecord]:
    codec = RecordCodec(AvroCodec())
    return [
        codec.decode_invalid(r.value) for r in consume_all(bootstrap, prefix + "invalid-events")
    ]


def mapped_settings(
    settings_factory: Callable[..., Settings],
    directory: Path,
    topics: list[str],
    mapping: str,
    partitions: int = 1,
    **overrides: Any,
) -> Settings:
    """One test's settings reading ``topics`` (prefixed, created here) with ``mapping``."""
    base = settings_factory(partitions=partitions)
    settings = base.with_overrides(
        input_topics=",".join(base.topic_prefix + t for t in topics),
        inputs=write_mapping(directory, mapping.format(p=base.topic_prefix)),
        **overrides,
    )
    ensure_topics(
        make_admin(settings),
        Topics.from_settings(settings),
        partitions=partitions,
        replication_factor=1,
        input_topics=settings.input_topic_list(),
    )
    return settings
