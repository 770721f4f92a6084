"""Client factories: the only place confluent-kafka clients are configured.

Defaults that the design depends on are applied last and cannot be overridden:
``enable.auto.offset.store=false`` (offsets follow outcomes), range assignment (partition *p*
of every co-partitioned topic on one member) and idempotent producing.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from worker.config import Settings

__all__ = ["consumer_config", "make_admin", "make_consumer", "make_producer", "producer_config"]

PRODUCER_DEFAULTS = {
    "linger.ms": "5",
    "batch.num.messages": "10000",
    "queue.buffering.max.messages": "500000",
    "partitioner": "murmur2_random",  # the Java client's partitioner: same key, same partition
}
PRODUCER_REQUIRED = {"enable.idempotence": "true", "acks": "all"}

CONSUMER_DEFAULTS = {
    "auto.offset.reset": "earliest",
    "enable.auto.commit": "true",
    "auto.commit.interval.ms": "1000",
    "session.timeout.ms": "6000",
    "heartbeat.interval.ms": "500",
    "max.poll.interval.ms": "300000",
    "fetch.wait.max.ms": "10",
    "group.protocol": "classic",
}
CONSUMER_REQUIRED = {
    "enable.auto.offset.store": "false",
    "partition.assignment.strategy": "range",
}


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    return {
        **PRODUCER_DEFAULTS,
        **settings.to_librdkafka(),
        **overrides,
        **PRODUCER_REQUIRED,
    }


def make_producer(settings: Settings, **overrides: Any) -> Producer:
    return Producer(producer_config(settings, **overrides))


def consumer_config(settings: Settings, group_id: str | None, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {**CONSUMER_DEFAULTS, **settings.to_librdkafka(), **overrides}
    if group_id is None:
        # A reader that assigns partitions itself: it never joins or commits to a group.
        config["group.id"] = "webhook-worker-reader"
        config["enable.auto.commit"] = "false"
        config["enable.auto.offset.store"] = "false"
        return config
    config["group.id"] = group_id
    config.update(CONSUMER_REQUIRED)
    return config


def make_consumer(settings: Settings, group_id: str | None, **overrides: Any) -> Consumer:
    return Consumer(consumer_config(settings, group_id, **overrides))


def make_admin(settings: Settings) -> AdminClient:
    config: dict[str, Any] = dict(settings.to_librdkafka())
    return AdminClient(config)
