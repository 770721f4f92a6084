"""After a takeover: did the crashed owner's record land? Read the destination topic from
the old claim's time and look for the source's record with that webhook-id.

Rare (a replica died between its claim and its ``landed`` mark) and bounded: only records
written since the old claim (a lease ago, give or take) are read, and only their keys are
compared before a value is parsed.
"""

from __future__ import annotations

import time

import orjson
from confluent_kafka import KafkaError, TopicPartition

from worker.config import Settings
from worker.errors import BackendError
from worker.kafka.clients import close_consumer, make_consumer

__all__ = ["RecoveryFailed", "record_landed"]

_CLOCK_SKEW_MS = 5_000


class RecoveryFailed(BackendError):
    """The topic could not be read to its end in time: nothing may be written."""


def record_landed(
    settings: Settings,
    topic: str,
    source_id: str,
    webhook_id: str,
    since_ms: int,
    timeout_s: float = 20.0,
) -> bool:
    """Whether ``topic`` holds a record of ``source_id`` with ``webhook_id`` written since
    ``since_ms`` (blocking; run it off the event loop)."""
    consumer = make_consumer(settings, None, **{"enable.partition.eof": "true"})
    key = source_id.encode()
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        info = metadata.topics.get(topic)
        if info is None or info.error is not None:
            raise RecoveryFailed(f"topic {topic} cannot be read")
        wanted = [
            TopicPartition(topic, p, max(0, since_ms - _CLOCK_SKEW_MS)) for p in info.partitions
        ]
        starts = consumer.offsets_for_times(wanted, timeout=10)
        pending = {tp.partition for tp in starts if tp.offset >= 0}
        consumer.assign([tp for tp in starts if tp.offset >= 0])
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise RecoveryFailed(f"could not read {topic} to its end in {timeout_s:g}s")
            for message in consumer.consume(500, 0.2):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(message.partition())
                    continue
                if message.key() == key and _webhook_id(message.value()) == webhook_id:
                    return True
        return False
    finally:
        close_consumer(consumer, "incoming recovery")


def _webhook_id(value: bytes | None) -> object:
    try:
        document = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    return document.get("webhook_id") if isinstance(document, dict) else None
