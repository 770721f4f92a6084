"""Is the cluster reachable? A real metadata round-trip, for readiness checks."""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Producer

__all__ = ["broker_probe"]

PROBE_TIMEOUT_S = 3.0


def broker_probe(producer: Producer, topic: str) -> Callable[[], None]:
    """A probe that raises ``ConnectionError`` when a metadata request for ``topic`` on the
    producer's connections does not come back.

    Chosen over librdkafka's error_cb: ``_ALL_BROKERS_DOWN`` has no matching "up" event,
    ``_TRANSPORT`` is raised for a single connection (one broker of many, or an idle
    connection the broker closed), and the consumers and producer mostly retry silently. A
    metadata request either reaches the cluster or times out, whatever the cause. One topic,
    not all: cheap on a big cluster."""

    def probe() -> None:
        try:
            producer.list_topics(topic, timeout=PROBE_TIMEOUT_S)
        except KafkaException as exc:
            error = exc.args[0]
            raise ConnectionError(error.str() if isinstance(error, KafkaError) else exc) from None

    return probe
