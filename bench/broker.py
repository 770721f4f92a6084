"""The broker a benchmark runs on: one Apache Kafka KRaft node where Java 17+ and Maven are
present (what our users run), else the embedded Tansu; ``BENCH_BROKER=kafka|tansu`` chooses.
``BENCH_BOOTSTRAP`` points every scenario at a cluster that is already running instead."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from worker.kafka.devbroker import DevBroker, tansu_version
from worker.kafka.kafkabroker import KAFKA_VERSION, KafkaCluster
from worker.kafka.kafkajars import java_and_maven

__all__ = ["LocalBroker", "broker_name", "local_broker"]


@dataclass(frozen=True)
class LocalBroker:
    bootstrap: str
    name: str  # "Apache Kafka 4.1.1", "Tansu 0.6.0" or "external"
    pids: tuple[int, ...] = ()  # the broker processes started here


def broker_name() -> str:
    """What :func:`local_broker` would start, for reports."""
    if os.environ.get("BENCH_BOOTSTRAP"):
        return "external"
    if _kafka():
        return f"Apache Kafka {KAFKA_VERSION}"
    return f"Tansu {tansu_version()}"


def _kafka() -> bool:
    choice = os.environ.get("BENCH_BROKER", "auto")
    return choice == "kafka" or (choice == "auto" and java_and_maven())


@contextlib.contextmanager
def local_broker() -> Iterator[LocalBroker]:
    """A fresh broker (stopped on exit), or the one ``BENCH_BOOTSTRAP`` names."""
    if os.environ.get("BENCH_BOOTSTRAP"):
        yield LocalBroker(os.environ["BENCH_BOOTSTRAP"], "external")
    elif _kafka():
        with KafkaCluster(nodes=1, heap_mb=1024) as cluster:
            pids = tuple(node.pid for node in cluster.nodes if node.pid is not None)
            yield LocalBroker(cluster.bootstrap, f"Apache Kafka {KAFKA_VERSION}", pids)
    else:
        with DevBroker() as broker:
            yield LocalBroker(broker.bootstrap, f"Tansu {tansu_version()}")
