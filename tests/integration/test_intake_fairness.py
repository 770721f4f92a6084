"""A backlog on one input topic does not hold back another topic's events: the router hands
out what it polled a partition at a time, in turn, and pauses a partition with many records
waiting, so the quiet topic's events are routed within a few hundred of the backlog's instead
of behind everything the client had fetched (4 MB of it: thousands of records)."""

from __future__ import annotations

import dataclasses
import time

from confluent_kafka import Consumer, TopicPartition

from tests.support.kafka import consume_all, produce_json
from tests.support.subs import SubsWriter
from tests.support.worker import running
from worker.codec.avro import AvroCodec
from worker.codec.records import RecordCodec
from worker.kafka.admin import ensure_topics
from worker.kafka.clients import make_admin
from worker.kafka.topics import Topics

FLOOD = 20_000
PAD = "x" * 1000  # 4 MB of the client's queue is about 4,000 of these


def deliveries_end(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "fairness-probe"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
    finally:
        consumer.close()


def test_a_quiet_topic_is_routed_while_another_topic_drains_a_backlog(settings_factory):
    base = settings_factory(partitions=1)
    calm = base.input_topics.replace("events", "calm")
    settings = dataclasses.replace(base, input_topics=f"{base.input_topics},{calm}")
    ensure_topics(
        make_admin(settings),
        Topics.from_settings(settings),
        partitions=1,
        replication_factor=settings.replication_factor,
        input_topics=settings.input_topic_list(),
    )
    SubsWriter(settings).create("acme", "http://127.0.0.1:9/hook", ["*"], ordering="none")
    flood = [
        {"event": "flood.x", "workspace": "acme", "id": f"f{i:05d}", "pad": PAD}
        for i in range(FLOOD)
    ]
    produce_json(settings.bootstrap_servers, base.input_topics, flood, key="k")
    deliveries = Topics.from_settings(settings).deliveries
    with running(settings, role="router"):
        deadline = time.monotonic() + 60
        while deliveries_end(settings.bootstrap_servers, deliveries) < 1_000:
            assert time.monotonic() < deadline, "the router did not start on the backlog"
            time.sleep(0.05)
        calm_events = [{"event": "calm.x", "workspace": "acme", "id": f"c{i}"} for i in range(5)]
        produce_json(settings.bootstrap_servers, calm, calm_events, key="k")
        routed = deliveries_end(settings.bootstrap_servers, deliveries)  # once they are written
        deadline = time.monotonic() + 120
        while deliveries_end(settings.bootstrap_servers, deliveries) < FLOOD + 5:
            assert time.monotonic() < deadline, "not everything was routed"
            time.sleep(0.2)
    codec = RecordCodec(AvroCodec())
    order = [
        codec.decode_task(r.value).event_id
        for r in consume_all(settings.bootstrap_servers, deliveries)
    ]
    assert sorted(order) == sorted([e["id"] for e in flood + calm_events])
    assert [i for i in order if i.startswith("f")] == [e["id"] for e in flood], "flood in order"
    positions = [order.index(e["id"]) for e in calm_events]
    # Once the calm events were written, ``routed`` flood events had been routed; with one
    # queue for both topics they would come after the 4 MB the client had fetched meanwhile.
    ahead = max(positions) - routed
    assert ahead < 1_500, f"{ahead} flood events were routed before the calm ones"
    assert max(positions) < FLOOD, "the calm events did not wait for the backlog's end"
