"""Producing input records with keys and headers, mapping files, the custom-format order
example and a receiver subscribed to it all, for the input-format tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer

from tests.support.kafka import consume_all
from tests.support.receiver import Receiver
from tests.support.subs import SubsWriter
from tests.support.topics import create_topics
from worker.codec.avro import AvroCodec
from worker.codec.records import RecordCodec
from worker.config import Settings
from worker.model import InvalidRecord
from worker.subscriptions.secrets import generate_secret

Raw = tuple[bytes | str | None, bytes | None, dict[str, bytes] | None]  # key, value, headers

# A custom-format input taking each part of the event from its own source (the Kafka key is
# the ordering key); ORDER is a value for it, ORDER_BODY the webhook body it maps to with key
# ``cust-1`` and header ``x-tenant: acme``.
ORDERS_INPUT = """\
    format: custom
    event: field:kind
    workspace: header:x-tenant
    record: field:order
    id: field:order_ref
    timestamp: field:placed_at
    ordering_key: key
"""
ORDER = {
    "kind": "order.placed",
    "order_ref": "o-981",
    "placed_at": 1774967400000,
    "order": {"id": "o-981", "total": "42.00"},
}
ORDER_BODY = {
    "event": "order.placed",
    "workspace": "acme",
    "id": "o-981",
    "timestamp": "2026-03-31T14:30:00.000Z",
    "record": {"id": "o-981", "total": "42.00"},
    "ordering_key": "cust-1",
}


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
    create_topics(settings, partitions)
    return settings


@contextmanager
def subscribed_receiver(settings: Settings, ordering: str = "none") -> Iterator[Receiver]:
    """A receiver whose endpoint ``ok`` has a subscription of workspace ``acme`` to every
    event, with ``ordering``; check ``verified`` on what it got."""
    with Receiver() as receiver:
        secret = generate_secret()
        SubsWriter(settings).create(
            "acme", receiver.endpoint("ok", secret), ["*"], secret=secret, ordering=ordering
        )
        yield receiver
