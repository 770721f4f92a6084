"""Shared fixtures: one real broker per session -- Apache Kafka (one KRaft node), Tansu with
``WEBHOOK_TEST_BROKER=tansu``, or the cluster at ``KAFKA_BOOTSTRAP_SERVERS`` -- a topic prefix
per test, and settings pointing at both."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from worker.config import Settings, parse_retry_delays
from worker.kafka.admin import ensure_topics
from worker.kafka.clients import make_admin
from worker.kafka.devbroker import DevBroker
from worker.kafka.kafkabroker import KafkaCluster
from worker.kafka.topics import Topics

INTEGRATION = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration (and tests/reliability) needs the broker:
    ``-m "not integration"`` skips it."""
    for item in items:
        if {INTEGRATION, INTEGRATION.parent / "reliability"} & set(Path(str(item.fspath)).parents):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[KafkaCluster | None]:
    """The session's own Apache Kafka node, or None when the suite runs on another broker
    (``KAFKA_BOOTSTRAP_SERVERS`` or ``WEBHOOK_TEST_BROKER=tansu``)."""
    if (
        os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        or os.environ.get("WEBHOOK_TEST_BROKER") == "tansu"
    ):
        yield None
        return
    with KafkaCluster(nodes=1) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_cluster: KafkaCluster | None) -> Iterator[str]:
    """``KAFKA_BOOTSTRAP_SERVERS`` when set, else the session's broker."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    elif kafka_cluster is not None:
        yield kafka_cluster.bootstrap
    else:
        with DevBroker() as broker:
            yield broker.bootstrap


@pytest.fixture
def topic_prefix() -> str:
    """A unique prefix per test, so tests never share topics or groups."""
    return f"t{uuid.uuid4().hex[:8]}."


@pytest.fixture
def settings_factory(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> Callable[..., Settings]:
    """``make(partitions=3, retry_delays="200ms,400ms", **overrides) -> Settings`` for one
    test, with its topics (and its input topic) already created."""

    def make(
        *, partitions: int = 3, retry_delays: str = "200ms,400ms", **overrides: Any
    ) -> Settings:
        settings = Settings.from_env(
            {},
            bootstrap_servers=kafka_bootstrap,
            topic_prefix=topic_prefix,
            input_topics=f"{topic_prefix}events",
            group_id=f"{topic_prefix}group",
            metrics_port=0,
            allow_http=True,
            allow_private_networks=True,
            retry_delays_ms=parse_retry_delays(retry_delays),
            shutdown_timeout_ms=10_000,
            challenge_cache=str(tmp_path / "challenges.json"),
            **overrides,
        )
        ensure_topics(
            make_admin(settings),
            Topics.from_settings(settings),
            partitions=partitions,
            replication_factor=settings.replication_factor,  # None: the cluster's default
            input_topics=settings.input_topic_list(),
        )
        return settings

    return make
