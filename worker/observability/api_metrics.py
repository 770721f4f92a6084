"""The management API's metrics, on its own ``/metrics`` (the API runs in its own process).

Labels stay bounded: ``route`` is the route's template (``/v1/workspaces/{ws}/...``), never
a concrete path; unknown paths count as ``other``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from worker.observability.dropped_spans import spans_dropped_counter

__all__ = ["INCOMING_OUTCOMES", "ApiMetrics"]

INCOMING_OUTCOMES = (
    "accepted",
    "duplicate",
    "refused",
    "unknown_source",
    "rate_limited",
    "too_large",
    "busy",
    "failed",
)

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "webhook_api_requests_total",
            "API requests by route template, method and status class",
            ("route", "method", "status_class"),
            registry=self.registry,
        )
        self._latency = Histogram(
            "webhook_api_request_duration_seconds",
            "API request latency by route template",
            ("route",),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.index_lag = Gauge(
            "webhook_api_index_lag_records",
            "Records of attempts, dlq and redrives not yet in the API's delivery-log index",
            registry=self.registry,
        )
        self.index_ready = Gauge(
            "webhook_api_index_caught_up",
            "1 once the delivery-log index has caught up with its topics",
            registry=self.registry,
        )
        self._rate_limited = Counter(
            "webhook_api_rate_limited_total",
            "API requests refused with 429",
            registry=self.registry,
        )

        self._incoming = Counter(
            "webhook_incoming_requests_total",
            "Requests to /in/{source} by outcome: accepted, duplicate, refused (401/400/431), "
            "unknown_source, rate_limited, too_large, busy, failed",
            ("outcome",),
            registry=self.registry,
        )
        for outcome in INCOMING_OUTCOMES:
            self._incoming.labels(outcome)
        self._spans_dropped = spans_dropped_counter(self.registry)

    def spans_dropped(self, reason: str, n: int) -> None:
        """``n`` trace spans lost: ``queue_full`` or ``export_failed`` (any thread)."""
        self._spans_dropped.labels(reason=reason).inc(n)

    def incoming(self, outcome: str) -> None:
        """One request to ``/in/{source}`` ended with ``outcome`` (one of INCOMING_OUTCOMES)."""
        self._incoming.labels(outcome if outcome in INCOMING_OUTCOMES else "failed").inc()

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        self._requests.labels(route, method, f"{status // 100}xx").inc()
        self._latency.labels(route).observe(seconds)

    def rate_limited(self) -> None:
        self._rate_limited.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
