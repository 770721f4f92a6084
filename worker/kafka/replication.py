"""How many copies of each topic the worker keeps: ``WEBHOOK_REPLICATION_FACTOR``, else the
cluster's ``default.replication.factor``; with three or more copies ``min.insync.replicas`` is
one less, so an acknowledged write (``acks=all``) survives the loss of a broker while one broker
may be down without stopping writes."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from worker.errors import BackendError

__all__ = ["ReplicationError", "durability_config", "replication_factor"]


class ReplicationError(BackendError):
    """The replication factor cannot be had on this cluster; the message is one line."""


def replication_factor(admin: AdminClient, configured: int | None, timeout: float = 30) -> int:
    """``configured``, else the cluster's default; checked against the brokers' count."""
    brokers = admin.list_topics(timeout=timeout).brokers
    if configured is None:
        configured = _cluster_default(admin, min(brokers) if brokers else None, timeout)
    if brokers and configured > len(brokers):
        raise ReplicationError(
            f"replication factor {configured} needs {configured} brokers, "
            f"the cluster has {len(brokers)} (set WEBHOOK_REPLICATION_FACTOR)"
        )
    return configured


def durability_config(factor: int) -> dict[str, str]:
    """Topic configs that go with ``factor`` copies."""
    return {"min.insync.replicas": str(factor - 1)} if factor >= 3 else {}


def _cluster_default(admin: AdminClient, broker: int | None, timeout: float) -> int:
    if broker is None:
        return 1
    resource = ConfigResource(ResourceType.BROKER, str(broker))
    try:
        configs = admin.describe_configs([resource], request_timeout=timeout)[resource].result()
    except Exception:  # a cluster that hides its configs (ACLs): Kafka's own default
        return 1
    entry = configs.get("default.replication.factor")
    return int(entry.value) if entry is not None and entry.value else 1
