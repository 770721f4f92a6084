"""``topics ensure``: create the worker's topics with the right configs, check existing ones.

Co-partitioned topics (keyed by subscription id) must all have the partition count of
``deliveries``: the dispatcher's ordering depends on it, so a mismatch is an error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from worker.kafka.topics import Topics

__all__ = ["EnsureReport", "TopicsError", "ensure_topics"]

DAY_MS = 86_400_000


class TopicsError(RuntimeError):
    """The topics cannot be made right; the message says what to fix."""


@dataclass
class EnsureReport:
    created: list[str] = field(default_factory=list)
    ok: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"created": self.created, "ok": self.ok, "problems": self.problems}

    def summary(self) -> str:
        lines = [f"created {t}" for t in self.created] + [f"ok      {t}" for t in self.ok]
        lines += [f"PROBLEM {p}" for p in self.problems]
        return "\n".join(lines)


def _wanted(topics: Topics, input_topics: list[str]) -> dict[str, dict[str, str]]:
    compact = {"cleanup.policy": "compact"}
    wanted: dict[str, dict[str, str]] = {
        topics.subscriptions: compact,
        topics.deliveries: {"retention.ms": str(7 * DAY_MS)},
        topics.parked: compact,
        topics.dlq: {"retention.ms": str(30 * DAY_MS)},
        topics.attempts: {"retention.ms": str(7 * DAY_MS)},
        topics.invalid_events: {"retention.ms": str(30 * DAY_MS)},
    }
    for retry in topics.retry:
        wanted[retry] = {"retention.ms": str(7 * DAY_MS)}
    for name in input_topics:
        wanted.setdefault(name, {})
    return wanted


def ensure_topics(
    admin: AdminClient,
    topics: Topics,
    *,
    partitions: int,
    replication_factor: int,
    input_topics: list[str],
    timeout: float = 30.0,
) -> EnsureReport:
    report = EnsureReport()
    wanted = _wanted(topics, input_topics)
    existing = admin.list_topics(timeout=timeout).topics
    counts = {name: len(existing[name].partitions) for name in wanted if name in existing}
    target = counts.get(topics.deliveries, partitions)
    missing = [name for name in wanted if name not in existing]
    for name in topics.co_partitioned:
        if name in counts and counts[name] != target:
            raise TopicsError(
                f"{name} has {counts[name]} partitions but {topics.deliveries} has {target}: "
                "co-partitioned topics must match (recreate or add partitions)"
            )
    if missing:
        new = [
            NewTopic(
                name,
                num_partitions=target
                if name in topics.co_partitioned
                else (1 if name == topics.subscriptions else partitions),
                replication_factor=replication_factor,
                config=wanted[name],
            )
            for name in missing
        ]
        for name, future in admin.create_topics(new, request_timeout=timeout).items():
            try:
                future.result()
                report.created.append(name)
            except Exception as exc:
                if "TOPIC_ALREADY_EXISTS" in str(exc):
                    report.ok.append(name)
                else:
                    raise TopicsError(f"cannot create {name}: {exc}") from None
        _wait_visible(admin, missing, timeout)
    _check_configs(admin, topics, report, [n for n in wanted if n in existing])
    report.ok.extend(n for n in wanted if n in existing)
    return report


def _check_configs(
    admin: AdminClient, topics: Topics, report: EnsureReport, names: list[str]
) -> None:
    compacted = [n for n in (topics.subscriptions, topics.parked) if n in names]
    if not compacted:
        return
    resources = [ConfigResource(ResourceType.TOPIC, n) for n in compacted]
    for resource, future in admin.describe_configs(resources).items():
        try:
            configs = future.result()
        except Exception as exc:
            report.problems.append(f"cannot read the configs of {resource.name}: {exc}")
            continue
        policy = configs.get("cleanup.policy")
        if policy is not None and "compact" not in str(policy.value):
            report.problems.append(
                f"{resource.name} has cleanup.policy={policy.value}, expected compact"
            )


def _wait_visible(admin: AdminClient, names: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        known = admin.list_topics(timeout=timeout).topics
        if all(n in known and known[n].partitions for n in names):
            return
        time.sleep(0.1)
    raise TopicsError(f"created topics did not appear in metadata: {names}")
