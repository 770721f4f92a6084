"""Reading a whole topic once (what the dlq commands stand on): every record of batched
writes, in offset order per partition, and from a point in time."""

from __future__ import annotations

import time

from confluent_kafka import Producer

from worker.kafka.scan import scan
from worker.kafka.topics import Topics


def test_scan_reads_every_record_of_batched_writes_in_order(settings_factory):
    settings = settings_factory(partitions=3)
    topic = Topics.from_settings(settings).redrives
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 50})
    for i in range(600):
        producer.produce(topic, str(i).encode(), f"k{i % 7}".encode())
    assert producer.flush(30) == 0
    got = list(scan(settings, topic))
    assert sorted(int(m.value()) for m in got) == list(range(600))
    for partition in {m.partition() for m in got}:
        values = [int(m.value()) for m in got if m.partition() == partition]
        assert values == sorted(values)


def test_scan_from_a_time_and_of_an_empty_topic(settings_factory):
    settings = settings_factory(partitions=2)
    topics = Topics.from_settings(settings)
    assert list(scan(settings, topics.redrives)) == []
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    producer.produce(topics.redrives, b"old", b"k")
    producer.flush(10)
    time.sleep(0.05)
    since = int(time.time() * 1000)
    time.sleep(0.05)
    producer.produce(topics.redrives, b"new", b"k")
    producer.flush(10)
    assert [m.value() for m in scan(settings, topics.redrives, since_ms=since)] == [b"new"]
    assert [m.value() for m in scan(settings, topics.redrives)] == [b"old", b"new"]
