"""Reading single records back from a topic by position: the attempt detail's request and
response headers and bodies live on the ``attempts`` topic, not in the index (they would
make it several times larger), so a detail view reads the few records of one delivery.
Records the topic no longer holds (retention) are simply not found, and not waited for."""

from __future__ import annotations

import time
from collections import defaultdict

from confluent_kafka import Consumer, KafkaError, TopicPartition

from worker.config import Settings
from worker.kafka.clients import make_consumer

__all__ = ["read_records"]

TIMEOUT_S = 5.0
Position = tuple[int, int]


def read_records(
    settings: Settings, topic: str, positions: list[Position]
) -> dict[Position, bytes]:
    """The values at ``positions`` ((partition, offset) pairs) that the topic holds and that
    could be read within the timeout, by position."""
    found: dict[Position, bytes] = {}
    if not positions:
        return found
    wanted: dict[int, set[int]] = defaultdict(set)
    for partition, offset in positions:
        wanted[partition].add(offset)
    consumer = make_consumer(settings, None, **{"enable.partition.eof": "true"})
    deadline = time.monotonic() + TIMEOUT_S
    try:
        known = consumer.list_topics(topic, timeout=TIMEOUT_S).topics.get(topic)
        partitions = set(known.partitions) if known is not None and not known.error else set()
        for partition, offsets in wanted.items():
            if partition not in partitions:
                continue
            # Below the low watermark, retention deleted it. The high one is not a bound: some
            # brokers (Tansu) report the last batch's base offset + 1, and past the end the
            # read stops at the partition's end anyway.
            low, _high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=TIMEOUT_S
            )
            for offset in sorted(o for o in offsets if o >= low):
                if (partition, offset) not in found:
                    _read(consumer, topic, partition, offset, offsets, found, deadline)
    finally:
        consumer.close()
    return found


def _read(
    consumer: Consumer,
    topic: str,
    partition: int,
    offset: int,
    offsets: set[int],
    found: dict[Position, bytes],
    deadline: float,
) -> None:
    """Read from ``offset`` until it (or a later record) came; keep any of ``offsets`` seen."""
    consumer.assign([TopicPartition(topic, partition, offset)])
    while time.monotonic() < deadline:
        message = consumer.poll(min(0.5, max(0.0, deadline - time.monotonic())))
        if message is None:
            continue
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return
            continue
        at = message.offset() or 0
        value = message.value()
        if at in offsets and value is not None:
            found[(partition, at)] = value
        if at >= offset:
            return
