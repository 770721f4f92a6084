"""Creating a test's or a benchmark's own topics (its input topics included) on one broker."""

from __future__ import annotations

from worker.config import Settings
from worker.kafka.admin import ensure_topics
from worker.kafka.clients import make_admin
from worker.kafka.topics import Topics


def create_topics(settings: Settings, partitions: int, replication_factor: int | None = 1) -> None:
    """The worker's topics under ``settings``' prefix, and its input topics, with
    ``partitions`` each (one replica by default: the single-node brokers of tests and bench)."""
    ensure_topics(
        make_admin(settings),
        Topics.from_settings(settings),
        partitions=partitions,
        replication_factor=replication_factor,
        input_topics=settings.input_topic_list(),
    )
