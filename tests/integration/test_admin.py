"""``ensure_topics`` against the real broker: creates with the right configs, is idempotent,
and refuses co-partitioned topics whose partition counts differ."""

from __future__ import annotations

import json
import time

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from worker.config import Settings, parse_retry_delays
from worker.kafka.admin import TopicsError, ensure_topics
from worker.kafka.clients import make_admin
from worker.kafka.topics import Topics


@pytest.fixture
def settings(kafka_bootstrap: str, topic_prefix: str) -> Settings:
    """Settings whose topics do not exist yet (unlike ``settings_factory``)."""
    return Settings.from_env(
        {},
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=topic_prefix,
        input_topics=f"{topic_prefix}events,{topic_prefix}more",
        retry_delays_ms=parse_retry_delays("1s,30s,30s"),
    )


def partition_counts(admin: AdminClient, names: list[str]) -> dict[str, int]:
    metadata = admin.list_topics(timeout=10).topics
    return {name: len(metadata[name].partitions) for name in names if name in metadata}


def config(admin: AdminClient, topic: str, key: str) -> str | None:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entry = admin.describe_configs([resource])[resource].result(10).get(key)
    return None if entry is None else str(entry.value)


def create(admin: AdminClient, topic: str, partitions: int, **configs: str) -> None:
    """Create ``topic`` as an operator would have, long before: visible in metadata (Kafka
    answers CreateTopics before every broker's metadata cache has the topic)."""
    new = NewTopic(topic, num_partitions=partitions, replication_factor=1, config=configs)
    admin.create_topics([new])[topic].result(10)
    deadline = time.monotonic() + 10
    while len(admin.list_topics(topic, timeout=10).topics[topic].partitions) != partitions:
        assert time.monotonic() < deadline, f"{topic} never appeared in metadata"
        time.sleep(0.05)


def test_creates_every_topic_then_is_idempotent(settings: Settings) -> None:
    admin = make_admin(settings)
    topics = Topics.from_settings(settings)
    inputs = settings.input_topic_list()
    wanted = sorted({*topics.all(), *inputs})

    report = ensure_topics(admin, topics, partitions=3, replication_factor=1, input_topics=inputs)
    assert sorted(report.created) == wanted
    assert (report.ok, report.problems) == ([], [])
    assert len(topics.retry) == 2, "a repeated delay shares one topic"

    counts = partition_counts(admin, wanted)
    assert {counts[name] for name in topics.co_partitioned} == {3}
    assert counts[topics.subscriptions] == 1
    assert counts[topics.invalid_events] == 3 and counts[inputs[0]] == 3
    assert config(admin, topics.subscriptions, "cleanup.policy") == "compact"
    assert config(admin, topics.parked, "cleanup.policy") == "compact"
    for table in (topics.api_tokens, topics.sources, topics.idempotency, topics.incoming_dedupe):
        assert counts[table] == 1, "every replica reads a table whole"
    assert config(admin, topics.api_tokens, "cleanup.policy") == "compact"
    assert config(admin, topics.sources, "cleanup.policy") == "compact"
    assert config(admin, topics.idempotency, "cleanup.policy") == "compact,delete"
    assert config(admin, topics.incoming_dedupe, "cleanup.policy") == "compact,delete"
    assert config(admin, topics.dlq, "retention.ms") == str(30 * 86_400_000)

    again = ensure_topics(admin, topics, partitions=5, replication_factor=1, input_topics=inputs)
    assert (again.created, again.problems) == ([], [])
    assert sorted(again.ok) == wanted
    assert partition_counts(admin, wanted) == counts, "existing topics are left alone"
    assert json.loads(json.dumps(again.to_json()))["ok"] == again.ok


def test_new_co_partitioned_topics_follow_existing_deliveries(settings: Settings) -> None:
    admin = make_admin(settings)
    topics = Topics.from_settings(settings)
    create(admin, topics.deliveries, 4)
    report = ensure_topics(admin, topics, partitions=2, replication_factor=1, input_topics=[])
    assert topics.deliveries in report.ok
    counts = partition_counts(admin, list(topics.co_partitioned))
    assert set(counts.values()) == {4}


def test_partition_count_mismatch_is_an_error(settings: Settings) -> None:
    admin = make_admin(settings)
    topics = Topics.from_settings(settings)
    create(admin, topics.deliveries, 3)
    create(admin, topics.dlq, 2)
    with pytest.raises(TopicsError) as caught:
        ensure_topics(admin, topics, partitions=3, replication_factor=1, input_topics=[])
    message = str(caught.value)
    assert "\n" not in message
    assert f"{topics.dlq} has 2 partitions but {topics.deliveries} has 3" in message
    assert topics.attempts not in admin.list_topics(timeout=10).topics, "nothing created"


def test_wrong_cleanup_policy_is_a_reported_problem(settings: Settings) -> None:
    admin = make_admin(settings)
    topics = Topics.from_settings(settings)
    create(admin, topics.subscriptions, 1, **{"cleanup.policy": "delete"})
    report = ensure_topics(admin, topics, partitions=2, replication_factor=1, input_topics=[])
    assert report.problems == [
        f"{topics.subscriptions} has cleanup.policy=delete, expected compact"
    ]
    assert topics.subscriptions in report.ok and topics.deliveries in report.created


def test_a_regex_input_is_not_created(settings: Settings) -> None:
    admin = make_admin(settings)
    topics = Topics.from_settings(settings)
    regex = f"^{settings.topic_prefix}in\\..*"
    report = ensure_topics(admin, topics, partitions=1, replication_factor=1, input_topics=[regex])
    assert regex not in report.created
    assert regex not in admin.list_topics(timeout=10).topics


def test_drift_is_reported_and_a_compacted_task_topic_is_a_problem(settings: Settings) -> None:
    """An existing table with three partitions still works (drift, one line); ``deliveries``
    fewer partitions than an input topic, or ``dlq`` compacted, cannot (problems)."""
    admin = make_admin(settings)
    topics = Topics.from_settings(settings)
    inputs = settings.input_topic_list()
    create(admin, topics.subscriptions, 3, **{"cleanup.policy": "compact"})
    create(admin, topics.dlq, 2, **{"cleanup.policy": "compact"})
    create(admin, inputs[0], 4)
    report = ensure_topics(admin, topics, partitions=2, replication_factor=1, input_topics=inputs)
    assert report.drift == [f"{topics.subscriptions}: 3 partitions, created with 1"]
    assert sorted(report.problems) == sorted(
        [
            f"{topics.deliveries} has 2 partitions, fewer than input topic {inputs[0]}'s 4: "
            f"add partitions to {topics.deliveries} and its co-partitioned topics",
            f"{topics.dlq} has cleanup.policy=compact, expected delete: "
            "compaction would drop its records",
        ]
    )
    assert "DRIFT" in report.summary() and "PROBLEM" in report.summary()


def test_the_cluster_default_replication_factor_is_used_and_checked(settings: Settings) -> None:
    """``replication_factor=None`` takes the cluster's ``default.replication.factor`` (1 on
    the one-node test broker); a factor above the broker count is one clear error."""
    admin = make_admin(settings)
    topics = Topics.from_settings(settings)
    ensure_topics(admin, topics, partitions=1, replication_factor=None, input_topics=[])
    metadata = admin.list_topics(timeout=10).topics
    assert len(metadata[topics.deliveries].partitions[0].replicas) == 1
    brokers = len(admin.list_topics(timeout=10).brokers)
    with pytest.raises(TopicsError, match=f"needs {brokers + 1} brokers"):
        ensure_topics(admin, topics, partitions=1, replication_factor=brokers + 1, input_topics=[])
