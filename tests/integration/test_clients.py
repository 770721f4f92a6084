"""The client factories against the real broker: co-partitioned assignment, idempotent
lz4 producing, and offsets that are stored only when told."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition

from tests.support.kafka import consume_all
from worker.config import Settings
from worker.kafka.clients import make_consumer, make_producer
from worker.kafka.topics import Topics


def assigned(
    consumers: list[Consumer], total: int, timeout: float = 30
) -> list[set[tuple[str, int]]]:
    """Poll every member until the group has handed out ``total`` partitions."""
    deadline = time.monotonic() + timeout
    sets: list[set[tuple[str, int]]] = []
    while time.monotonic() < deadline:
        for consumer in consumers:
            consumer.poll(0.1)
        sets = [{(tp.topic, tp.partition) for tp in c.assignment()} for c in consumers]
        if sum(map(len, sets)) == total and all(sets):
            return sets
    raise AssertionError(f"no complete assignment within {timeout}s: {sets}")


def test_range_assignment_gives_each_member_the_same_partitions_of_every_topic(
    settings_factory: Callable[..., Settings],
) -> None:
    # A user property cannot switch the assignor: the dispatcher's ordering depends on it.
    settings = settings_factory(partitions=4, retry_delays="1s,5s").with_overrides(
        kafka_properties={"partition.assignment.strategy": "roundrobin"}
    )
    topics = Topics.from_settings(settings).dispatch_inputs
    # Three members: with roundrobin, 4 partitions per topic would then split differently.
    members = [make_consumer(settings, f"{settings.group_id}-range") for _ in range(3)]
    try:
        for member in members:
            member.subscribe(list(topics))
        sets = assigned(members, total=4 * len(topics))
        for member_set in sets:
            by_topic = {t: {p for topic, p in member_set if topic == t} for t in topics}
            first = by_topic[topics[0]]
            assert first and all(parts == first for parts in by_topic.values()), by_topic
    finally:
        for member in members:
            member.close()


def test_keyed_records_stay_in_order_through_the_idempotent_lz4_producer(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(partitions=3)
    producer = make_producer(settings)
    topic = Topics.from_settings(settings).deliveries
    for i in range(300):
        producer.produce(topic, str(i).encode(), f"sub_{i % 5}".encode())
    assert producer.flush(20) == 0
    records = consume_all(settings.bootstrap_servers or "", topic)
    assert len(records) == 300
    for key in {r.key for r in records}:
        values = [
            int(r.value or b"") for r in sorted(records, key=lambda r: r.offset) if r.key == key
        ]
        assert values == sorted(values)


def test_only_stored_offsets_are_committed(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(partitions=1)
    topic = Topics.from_settings(settings).attempts
    producer = make_producer(settings)
    for i in range(10):
        producer.produce(topic, str(i).encode())
    assert producer.flush(20) == 0
    group = f"{settings.group_id}-store"
    consumer = make_consumer(settings, group)
    try:
        consumer.subscribe([topic])
        seen = []
        deadline = time.monotonic() + 30
        while len(seen) < 10 and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                seen.append(msg)
        assert len(seen) == 10
        consumer.store_offsets(seen[3])  # records 0..3 have an outcome
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    reader = make_consumer(settings, group)
    try:
        [partition] = reader.committed([TopicPartition(topic, 0)], timeout=10)
    finally:
        reader.close()
    assert partition.offset == 4
