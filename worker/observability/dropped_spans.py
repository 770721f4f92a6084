"""The tracing pipeline's loss counter, shared by the worker's and the API's registries: each
process registers its own ``webhook_trace_spans_dropped_total{reason}``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

__all__ = ["TRACE_DROP_REASONS", "spans_dropped_counter"]

TRACE_DROP_REASONS = ("queue_full", "export_failed")


def spans_dropped_counter(registry: CollectorRegistry) -> Counter:
    """``webhook_trace_spans_dropped_total{reason}``: spans the tracing queue had no room for
    or the collector did not take (worker and API alike)."""
    counter = Counter(
        "webhook_trace_spans_dropped",
        "Trace spans dropped: the export queue was full, or the collector failed the batch.",
        ["reason"],
        registry=registry,
    )
    for reason in TRACE_DROP_REASONS:
        counter.labels(reason=reason)
    return counter
