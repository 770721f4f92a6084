"""The Apache Kafka launcher's own promises beyond a good start (which every test session
shows): a node that cannot start fails fast with one line naming its log, and the jars come
from the cache without Maven once resolved."""

from __future__ import annotations

import os
import time

import pytest

from worker.kafka.kafkabroker import KafkaBrokerError, KafkaCluster
from worker.kafka.kafkajars import KAFKA_VERSION, kafka_jars

pytestmark = pytest.mark.skipif(
    os.environ.get("WEBHOOK_TEST_BROKER") == "tansu", reason="the suite runs on Tansu"
)


@pytest.mark.timeout(120)
def test_a_node_that_cannot_start_fails_fast_naming_its_log() -> None:
    cluster = KafkaCluster(nodes=1, config={"num.io.threads": "not-a-number"}, start_timeout=60)
    started = time.monotonic()
    with pytest.raises(KafkaBrokerError) as failure:
        cluster.start()
    message = str(failure.value)
    assert "\n" not in message
    assert "not-a-number" in message, message  # the cause, from the log
    log = message.rsplit("log: ", 1)[1]
    assert log.startswith(str(cluster.nodes[0].dir)) and os.path.exists(log), "log kept"
    assert time.monotonic() - started < 45, "a broken config must not wait out the timeout"


def test_resolved_jars_are_found_without_maven(monkeypatch: pytest.MonkeyPatch) -> None:
    libs = kafka_jars()  # resolved by the session's broker already
    monkeypatch.setenv("PATH", "/nonexistent")
    assert kafka_jars() == libs
    assert (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").exists()
