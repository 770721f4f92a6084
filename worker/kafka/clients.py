"""Client factories: the only place confluent-kafka clients are configured.

Precedence, lowest first: our defaults, then the user's ``KAFKA_*`` properties
(``Settings.to_librdkafka()``), then the caller's ``overrides``, then the few properties the
design depends on, which nobody can change:

- producers are idempotent with ``acks=all`` (a retried send never duplicates or reorders
  a subscription's tasks);
- group consumers store offsets only when told (``enable.auto.offset.store=false``: offsets
  follow outcomes), use the classic group protocol with **range** assignment, so partition
  *p* of every co-partitioned topic goes to the same member (the dispatcher's ordering
  relies on it).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from worker.config import Settings

__all__ = [
    "CLOSE_TIMEOUT_S",
    "CONSUMER_DEFAULTS",
    "CONSUMER_REQUIRED",
    "PRODUCER_DEFAULTS",
    "PRODUCER_REQUIRED",
    "READER_DEFAULTS",
    "close_consumer",
    "consumer_config",
    "make_admin",
    "make_consumer",
    "make_producer",
    "make_unretried_producer",
    "producer_config",
]

PRODUCER_DEFAULTS: dict[str, str] = {
    # Batching matters more than latency here: tiny batches fetch slowly (docs/performance.md).
    "linger.ms": "5",
    "compression.type": "lz4",
    "batch.num.messages": "10000",
    "queue.buffering.max.messages": "500000",
    # librdkafka's default queue is 1 GB: under a flood it held hundreds of MB of records
    # waiting for the broker. 32 MB is a second or more of the broker's write rate here; a
    # full queue makes the writer wait for room (worker/kafka/writes.py), never drop.
    "queue.buffering.max.kbytes": "32768",
    # The Java client's partitioner, so a key lands where Java/Kafka Streams producers put it.
    "partitioner": "murmur2_random",
}
PRODUCER_REQUIRED: dict[str, str] = {"enable.idempotence": "true", "acks": "all"}

CONSUMER_DEFAULTS: dict[str, str] = {
    "auto.offset.reset": "earliest",
    "enable.auto.commit": "true",
    # What a crash re-sends is what finished since the last commit: keep the window short.
    "auto.commit.interval.ms": "500",
    # A crashed worker's partitions move on after this (librdkafka's default: 45 s). 6 s is
    # the brokers' default group.min.session.timeout.ms.
    "session.timeout.ms": "6000",
    "heartbeat.interval.ms": "500",
    "max.poll.interval.ms": "300000",
    "fetch.wait.max.ms": "10",
    # Prefetch bounded (librdkafka: 64 MB queued, 1 MB per partition per fetch, 50 MB per
    # fetch). The queue is one FIFO for every partition a consumer reads: with the defaults, a
    # 200,000-record backlog on one partition kept every record of a quiet one out until the
    # backlog had drained (python -m bench.fetch_fairness on Apache Kafka); with these, its
    # records waited 1.8 s (p50) and the backlog drained as fast. Shallower (1 MB) cost half
    # of bench A's throughput; these cost a fifth (docs/configuration.md has the numbers).
    "queued.max.messages.kbytes": "4096",
    "max.partition.fetch.bytes": "262144",
    "fetch.max.bytes": "4194304",
    # While that queue is full, librdkafka puts off fetching every partition for this long
    # (its default: 1 s): a quiet partition's records then wait a second behind a flood even
    # when the flood's partition is paused (worker/kafka/intake.py).
    "fetch.queue.backoff.ms": "10",
}
# A group-less reader reads one partition to its end (rebuilding lanes, following a table):
# nothing to share a fetch with, so whole 1 MB fetches (still within the queue's bound).
READER_DEFAULTS: dict[str, str] = {"max.partition.fetch.bytes": "1048576"}
CONSUMER_REQUIRED: dict[str, str] = {
    "enable.auto.offset.store": "false",
    "group.protocol": "classic",
    "partition.assignment.strategy": "range",
}
# A consumer without a group assigns partitions itself and never commits.
_READER_GROUP = "webhook-worker-reader"
# How long a consumer's close (final commit, leaving the group) may take before we stop anyway.
CLOSE_TIMEOUT_S = 10.0

log = logging.getLogger(__name__)


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """The producer configuration: defaults < ``KAFKA_*`` < ``overrides`` < idempotence."""
    return {**PRODUCER_DEFAULTS, **settings.to_librdkafka(), **overrides, **PRODUCER_REQUIRED}


def make_producer(settings: Settings, **overrides: Any) -> Producer:
    """An idempotent producer (see :func:`producer_config`)."""
    return Producer(producer_config(settings, **overrides))


def make_unretried_producer(settings: Settings, **overrides: Any) -> Producer:
    """A producer that never resends on its own (``acks=all``, no idempotence, no retries):
    each record is acknowledged once or fails. For callers that resolve a failed or
    unacknowledged write themselves, with no duplicate possible from the client: incoming
    webhooks (:mod:`worker.sources.dedupe` reads back what a lost acknowledgement hid). It
    also avoids the idempotent producer's stalls on brokers that handle its sequence numbers
    slowly (0.5-1 s seen on Tansu)."""
    config = {
        **PRODUCER_DEFAULTS,
        "socket.nagle.disable": "true",
        **settings.to_librdkafka(),
        **overrides,
        "acks": "all",
        "enable.idempotence": "false",
        "message.send.max.retries": "0",
    }
    return Producer(config)


def consumer_config(settings: Settings, group_id: str | None, **overrides: Any) -> dict[str, Any]:
    """The consumer configuration for ``group_id``.

    With ``group_id=None`` the consumer is a reader that uses ``assign()``: it gets a fixed
    placeholder group id (librdkafka wants one) and commits nothing.
    """
    reader = READER_DEFAULTS if group_id is None else {}
    config: dict[str, Any] = {
        **CONSUMER_DEFAULTS,
        **reader,
        **settings.to_librdkafka(),
        **overrides,
    }
    if group_id is None:
        config["group.id"] = _READER_GROUP
        config["enable.auto.commit"] = "false"
        config["enable.auto.offset.store"] = "false"
        return config
    config["group.id"] = group_id
    config.update(CONSUMER_REQUIRED)
    return config


def make_consumer(settings: Settings, group_id: str | None, **overrides: Any) -> Consumer:
    """A consumer (see :func:`consumer_config`); the caller must ``close()`` it."""
    return Consumer(consumer_config(settings, group_id, **overrides))


def make_admin(settings: Settings) -> AdminClient:
    """An admin client with the cluster address and the user's ``KAFKA_*`` properties."""
    return AdminClient(dict(settings.to_librdkafka()))


def close_consumer(consumer: Consumer, what: str, timeout_s: float = CLOSE_TIMEOUT_S) -> bool:
    """Close ``consumer``, waiting at most ``timeout_s``; True when it closed in time.

    librdkafka's close can wait forever for a cluster that went away mid-shutdown
    (confluent-kafka-python#1667), and a stopping worker must still stop: the close runs in a
    daemon thread, abandoned (with a warning) past the timeout. Whatever a partial close left
    uncommitted is re-delivered, as after a crash. Its rebalance callbacks run in that thread
    while the caller waits. Errors are logged, never raised.
    """

    def close() -> None:
        try:
            consumer.close()
        except Exception as exc:
            log.warning("closing the %s consumer: %s", what, exc)

    closer = threading.Thread(target=close, name=f"close-{what}", daemon=True)
    closer.start()
    closer.join(timeout_s)
    if closer.is_alive():
        log.warning(
            "the %s consumer did not close within %.0fs (is the cluster reachable?); "
            "stopping without it",
            what,
            timeout_s,
        )
        return False
    return True
