"""``topics ensure``: create the worker's topics with the right configs, check existing ones.

Co-partitioned topics (keyed by subscription id) must all have the partition count of
``deliveries``: the dispatcher's ordering depends on it, so a mismatch is an error. Existing
topics are compared with what would be created: a difference that still works (replication
factor, ``min.insync.replicas``, a table's partition count) is *drift*, one line each; one that
cannot work (a table that is not compacted, a topic of tasks that is, ``deliveries`` with fewer
partitions than an input topic) is a *problem*, and the CLI exits non-zero.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from worker.errors import BackendError
from worker.kafka.replication import ReplicationError, durability_config
from worker.kafka.replication import replication_factor as resolve_replication
from worker.kafka.topics import Topics

__all__ = ["EnsureReport", "TopicsError", "ensure_topics"]

DAY_MS = 86_400_000


class TopicsError(BackendError):
    """The topics cannot be made right; the message says what to fix."""


@dataclass
class EnsureReport:
    """What ``ensure_topics`` did: topics it created, topics that were already right, and
    problems it found but did not fix (the CLI exits non-zero on any)."""

    created: list[str] = field(default_factory=list)
    ok: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """``{"created": [...], "ok": [...], "drift": [...], "problems": [...]}``."""
        return {
            "created": self.created,
            "ok": self.ok,
            "drift": self.drift,
            "problems": self.problems,
        }

    def summary(self) -> str:
        """One line per topic, drift and problem, for humans."""
        lines = [f"created {t}" for t in self.created] + [f"ok      {t}" for t in self.ok]
        lines += [f"DRIFT   {d}" for d in self.drift]
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
        # Redrive checkpoints live as long as the dead letters they mark (plus a day).
        topics.redrives: {"cleanup.policy": "compact,delete", "retention.ms": str(31 * DAY_MS)},
        topics.api_tokens: compact,
        topics.sources: compact,
        # Idempotency-Key answers are kept 24 h; older ones may go (a day of margin).
        topics.idempotency: {"cleanup.policy": "compact,delete", "retention.ms": str(2 * DAY_MS)},
        # Opened portal links: needed until the link expires (at most 1 h); a day of margin.
        topics.portal_links: {"cleanup.policy": "compact,delete", "retention.ms": str(DAY_MS)},
        # Incoming webhook-ids are remembered for the dedupe window (at most a day).
        topics.incoming_dedupe: {
            "cleanup.policy": "compact,delete",
            "retention.ms": str(2 * DAY_MS),
        },
    }
    for retry in topics.retry:
        wanted[retry] = {"retention.ms": str(7 * DAY_MS)}
    for name in input_topics:
        # A ``^regex`` subscribes to topics that exist; there is nothing to create.
        if not name.startswith("^"):
            wanted.setdefault(name, {})
    return wanted


def ensure_topics(
    admin: AdminClient,
    topics: Topics,
    *,
    partitions: int,
    replication_factor: int | None,
    input_topics: list[str],
    timeout: float = 30.0,
) -> EnsureReport:
    """Create the missing topics and check the existing ones.

    New co-partitioned topics get the partition count of an existing ``deliveries`` (else
    ``partitions``); the compacted tables (``subscriptions``, ``api-tokens``, ``sources``,
    ``idempotency``, ``portal-links``) get one partition each (every instance reads all of them).
    ``replication_factor=None`` is the cluster's default (:mod:`worker.kafka.replication`).
    Returns once the created topics are visible in metadata. Raises :class:`TopicsError`
    when a co-partitioned topic's count differs from ``deliveries`` or creation fails.
    """
    report = EnsureReport()
    wanted = _wanted(topics, input_topics)
    try:
        factor = resolve_replication(admin, replication_factor, timeout)
    except ReplicationError as exc:
        raise TopicsError(str(exc)) from None
    durable = durability_config(factor)
    existing = admin.list_topics(timeout=timeout).topics
    counts = {name: len(existing[name].partitions) for name in wanted if name in existing}
    shared = _co_partition_count(topics, counts, partitions)
    missing = [name for name in wanted if name not in existing]
    if missing:
        new = [
            NewTopic(
                name,
                num_partitions=_partitions_for(name, topics, shared, partitions),
                replication_factor=factor,
                config={**wanted[name], **durable},
            )
            for name in missing
        ]
        _create(admin, new, report, timeout)
        _wait_visible(admin, missing, timeout)
    present = [name for name in wanted if name in existing]
    _check_shape(topics, report, existing, present, factor, (shared, input_topics))
    _check_configs(admin, topics, report, present, wanted, durable)
    report.ok.extend(present)
    return report


def _check_shape(
    topics: Topics,
    report: EnsureReport,
    existing: dict[str, Any],
    present: list[str],
    factor: int,
    inputs: tuple[int, list[str]],
) -> None:
    """Replication factors and partition counts of the topics that exist; ``inputs`` is the
    partition count ``deliveries`` has (or was just created with) and the input topics."""
    tasks, input_topics = inputs
    for name in present:
        partitions = existing[name].partitions
        copies = min((len(p.replicas) for p in partitions.values()), default=factor)
        if copies != factor:
            report.drift.append(f"{name}: replication factor {copies}, configured {factor}")
        if name in topics.compacted and len(partitions) != 1:
            report.drift.append(f"{name}: {len(partitions)} partitions, created with 1")
    for name in input_topics:
        if name in existing and len(existing[name].partitions) > tasks:
            report.problems.append(
                f"{topics.deliveries} has {tasks} partitions, fewer than input topic {name}'s "
                f"{len(existing[name].partitions)}: add partitions to {topics.deliveries} "
                "and its co-partitioned topics"
            )


def _co_partition_count(topics: Topics, counts: dict[str, int], default: int) -> int:
    """The partition count every co-partitioned topic must have: that of ``deliveries``, or
    of the first existing co-partitioned topic, else ``default``."""
    existing = [name for name in topics.co_partitioned if name in counts]
    if not existing:
        return default
    reference = topics.deliveries if topics.deliveries in counts else existing[0]
    for name in existing:
        if counts[name] != counts[reference]:
            raise TopicsError(
                f"{name} has {counts[name]} partitions but {reference} has {counts[reference]}: "
                "topics keyed by subscription id must match (recreate or add partitions)"
            )
    return counts[reference]


def _partitions_for(name: str, topics: Topics, shared: int, default: int) -> int:
    if name in topics.co_partitioned:
        return shared
    # One partition keeps a table's changes in one total order; every instance reads it all.
    return 1 if name in topics.compacted else default


def _create(admin: AdminClient, new: list[NewTopic], report: EnsureReport, timeout: float) -> None:
    for name, future in admin.create_topics(new, request_timeout=timeout).items():
        try:
            future.result()
            report.created.append(name)
        except KafkaException as exc:
            # Another instance created it between our listing and our request.
            if exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                report.ok.append(name)
            else:
                raise TopicsError(f"cannot create {name}: {exc.args[0].str()}") from None


def _check_configs(
    admin: AdminClient,
    topics: Topics,
    report: EnsureReport,
    names: list[str],
    wanted: dict[str, dict[str, str]],
    durable: dict[str, str],
) -> None:
    """Cleanup policies (a problem when wrong) and ``min.insync.replicas`` (drift)."""
    own = [name for name in names if name in wanted and name not in _inputs(topics, wanted)]
    if not own:
        return
    resources = [ConfigResource(ResourceType.TOPIC, n) for n in own]
    for resource, future in admin.describe_configs(resources).items():
        try:
            configs = future.result()
        except Exception as exc:
            report.problems.append(f"cannot read the configs of {resource.name}: {exc}")
            continue
        name = resource.name
        policy = str(configs["cleanup.policy"].value) if "cleanup.policy" in configs else ""
        expected = wanted[name].get("cleanup.policy", "delete")
        if ("compact" in expected) != ("compact" in policy):
            report.problems.append(
                f"{name} has cleanup.policy={policy}, expected {expected}"
                + ("" if "compact" in expected else ": compaction would drop its records")
            )
        isr = configs.get("min.insync.replicas")
        expected_isr = durable.get("min.insync.replicas")
        if expected_isr is not None and isr is not None and str(isr.value) != expected_isr:
            report.drift.append(f"{name}: min.insync.replicas {isr.value}, wanted {expected_isr}")


def _inputs(topics: Topics, wanted: dict[str, dict[str, str]]) -> set[str]:
    """The input topics among ``wanted`` (theirs to configure, not ours)."""
    return {name for name in wanted if name not in topics.all()}


def _wait_visible(admin: AdminClient, names: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        known = admin.list_topics(timeout=timeout).topics
        if all(n in known and known[n].partitions for n in names):
            return
        time.sleep(0.1)
    raise TopicsError(f"created topics did not appear in metadata: {names}")
