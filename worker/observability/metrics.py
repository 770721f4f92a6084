"""Prometheus metrics: the one facade the pipeline calls.

Every :class:`Metrics` owns its own :class:`~prometheus_client.CollectorRegistry`, so tests and
several workers in one process never share series. Labels are few and bounded: topics, outcome
and reason categories, retry delays, partitions. Never event ids, subscription ids or URLs.
Free-text label values are normalised and capped per label (see worker.observability.labels)
so a caller's mistake cannot explode the series count.

The per-delivery methods keep the label child they resolved for each distinct argument
(``labels()`` with its normalising and guarding costs 3-4 times the ``inc()`` itself).
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Iterable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

from worker.observability.dropped_spans import spans_dropped_counter
from worker.observability.labels import Children, LabelGuard, category, verbatim

__all__ = [
    "ATTEMPT_OUTCOMES",
    "DEAD_LETTER_REASONS",
    "DELIVERY_OUTCOMES",
    "INVALID_REASONS",
    "LOOP_LAG_BUCKETS",
    "STATUS_CLASSES",
    "SUBSCRIPTION_STATUSES",
    "Metrics",
]

ATTEMPT_OUTCOMES = ("success", "retry", "dead_letter")
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "network", "timeout", "blocked", "invalid")
DELIVERY_OUTCOMES = ("success", "dead_letter")
DEAD_LETTER_REASONS = (
    "client_error",
    "gone",
    "redirect",
    "destination_blocked",
    "invalid_request",
    "retries_exhausted",
    "endpoint_disabled",
    "subscription_deleted",
)
# The categories worker.codec.events gives its errors (the text before the first colon).
INVALID_REASONS = (
    "decode",
    "validation",
    "too_large",
    "empty_record",
    "debezium",
    "cloudevents",
    "custom",
)
SUBSCRIPTION_STATUSES = ("PENDING", "ACTIVE", "DISABLED", "BLOCKED", "TOO_MANY_ERRORS")

# One HTTP attempt: from a 1 ms local receiver to the 30 s maximum timeout.
ATTEMPT_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0,
)  # fmt: skip
# Event time to 2xx: milliseconds when healthy, hours when the retry ladder was climbed.
END_TO_END_BUCKETS = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
)  # fmt: skip

# How late a timer on the event loop fires: a healthy loop is under a few milliseconds, a
# blocking call (a broker round trip, a big decode) shows as tens to thousands.
LOOP_LAG_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


class Metrics:
    """The worker's metrics, registered in ``registry`` (a fresh one by default).

    ``input_topics`` and ``retry_delays`` (e.g. ``"30s"``) are optional: when given, their
    series exist at 0 from the start, so dashboards and ``rate()`` see them before traffic.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        input_topics: Iterable[str] = (),
        retry_delays: Iterable[str] = (),
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        topics = [verbatim(t) for t in input_topics]
        delays = [verbatim(d) for d in retry_delays]
        self._topic = LabelGuard(topics)
        self._invalid_reason = LabelGuard(INVALID_REASONS)
        self._outcome = LabelGuard(ATTEMPT_OUTCOMES)
        self._status_class = LabelGuard(STATUS_CLASSES)
        self._delay = LabelGuard(delays)
        self._dead_reason = LabelGuard(DEAD_LETTER_REASONS)
        self._sub_status = LabelGuard(SUBSCRIPTION_STATUSES)

        self._consumed = Counter(
            "webhook_events_consumed", "Input events read, by input topic.", ["topic"], registry=r
        )
        self._invalid = Counter(
            "webhook_events_invalid",
            "Input records that could not be decoded or validated, by category.",
            ["reason"],
            registry=r,
        )
        self._routed = Counter(
            "webhook_deliveries_routed", "Delivery tasks written by the router.", registry=r
        )
        self._attempts = Counter(
            "webhook_attempts",
            "HTTP delivery attempts, by outcome and response class.",
            ["outcome", "status_class"],
            registry=r,
        )
        self._attempt_seconds = Histogram(
            "webhook_attempt_duration_seconds",
            "Duration of one HTTP attempt, by outcome.",
            ["outcome"],
            buckets=ATTEMPT_BUCKETS,
            registry=r,
        )
        self._deliveries = Counter(
            "webhook_deliveries",
            "Deliveries finished for good, by outcome (success or dead_letter).",
            ["outcome"],
            registry=r,
        )
        self._duplicates = Counter(
            "webhook_duplicates_skipped",
            "Tasks not sent because their delivery already succeeded, was dead-lettered or is "
            "in flight (a replay after a crash, a re-produced event id).",
            registry=r,
        )
        self._end_to_end = Histogram(
            "webhook_end_to_end_latency_seconds",
            "From the event's timestamp to the endpoint's 2xx, retries included.",
            buckets=END_TO_END_BUCKETS,
            registry=r,
        )
        self._retries = Counter(
            "webhook_retries_scheduled",
            "Tasks handed to a retry topic, by delay.",
            ["delay"],
            registry=r,
        )
        self._dead_letters = Counter(
            "webhook_dead_letters",
            "Tasks written to the dead-letter topic, by reason.",
            ["reason"],
            registry=r,
        )
        self._in_flight = Gauge(
            "webhook_in_flight_deliveries", "HTTP attempts currently in progress.", registry=r
        )
        self._parked = Gauge(
            "webhook_parked_tasks",
            "Tasks of ordered subscriptions held in parked: behind a retry, or spilled.",
            registry=r,
        )
        self._spilled = Counter(
            "webhook_spilled_tasks_total",
            "Tasks not yet started moved from memory to parked to keep the read-ahead budget.",
            registry=r,
        )
        self._read_ahead = Gauge(
            "webhook_read_ahead_bytes",
            "Tasks read from deliveries but not yet started, estimated bytes in memory.",
            registry=r,
        )
        self._lag = Gauge(
            "webhook_consumer_lag",
            "Records between the committed offset and the end of the partition.",
            ["group", "topic", "partition"],
            registry=r,
        )
        self._subscriptions = Gauge(
            "webhook_subscriptions",
            "Subscriptions in the table, by status.",
            ["status"],
            registry=r,
        )
        self._oldest_due = Gauge(
            "webhook_retry_oldest_due_seconds",
            "How long the oldest due task of each retry topic has been waiting past its due time.",
            ["delay"],
            registry=r,
        )
        self._registry_up = Gauge(
            "webhook_schema_registry_up",
            "1 while the Schema Registry answers, 0 while input partitions wait for it.",
            registry=r,
        )
        self._held = Gauge(
            "webhook_input_partitions_held",
            "Input partitions paused at a record whose schema cannot be fetched yet.",
            registry=r,
        )
        self._registry_up.set(1)
        self._loop_lag = Histogram(
            "webhook_event_loop_lag_seconds",
            "How much later than asked a short sleep on the worker's event loop wakes up: "
            "the time the loop was blocked.",
            buckets=LOOP_LAG_BUCKETS,
            registry=r,
        )
        self._build = Info("webhook_build", "Version of the running worker.", registry=r)
        self._spans_dropped = spans_dropped_counter(r)
        self._preinitialise(topics, delays)
        self._consumed_by: Children[str, Counter] = Children(
            lambda topic: self._consumed.labels(topic=self._topic(verbatim(topic)))
        )
        self._invalid_by: Children[str, Counter] = Children(
            lambda reason: self._invalid.labels(reason=self._invalid_reason(category(reason)))
        )
        self._attempt_by: Children[tuple[str, str], tuple[Counter, Histogram]] = Children(
            self._attempt_children
        )
        self._deliveries_by: Children[str, Counter] = Children(
            lambda outcome: self._deliveries.labels(outcome=self._outcome(category(outcome)))
        )
        self._retries_by: Children[str, Counter] = Children(
            lambda delay: self._retries.labels(delay=self._delay(verbatim(delay)))
        )
        self._dead_letters_by: Children[str, Counter] = Children(
            lambda reason: self._dead_letters.labels(reason=self._dead_reason(category(reason)))
        )
        self._oldest_due_by: Children[str, Gauge] = Children(
            lambda delay: self._oldest_due.labels(delay=self._delay(verbatim(delay)))
        )

    def _preinitialise(self, topics: list[str], delays: list[str]) -> None:
        for topic in topics:
            self._consumed.labels(topic=topic)
        for reason in INVALID_REASONS:
            self._invalid.labels(reason=reason)
        for outcome in ATTEMPT_OUTCOMES:
            self._attempt_seconds.labels(outcome=outcome)
        for outcome, status_class in (
            ("success", "2xx"),
            ("retry", "5xx"),
            ("retry", "4xx"),
            ("retry", "network"),
            ("retry", "timeout"),
            ("dead_letter", "4xx"),
        ):
            self._attempts.labels(outcome=outcome, status_class=status_class)
        for outcome in DELIVERY_OUTCOMES:
            self._deliveries.labels(outcome=outcome)
        for reason in DEAD_LETTER_REASONS:
            self._dead_letters.labels(reason=reason)
        for delay in delays:
            self._retries.labels(delay=delay)
            self._oldest_due.labels(delay=delay)
        for status in SUBSCRIPTION_STATUSES:
            self._subscriptions.labels(status=status)

    # Router

    def event_consumed(self, topic: str) -> None:
        """One input record read from ``topic``."""
        self._consumed_by[topic].inc()

    def event_invalid(self, reason: str) -> None:
        """One input record rejected; ``reason`` is a category (decode, validation, too_large)."""
        self._invalid_by[reason].inc()

    def tasks_routed(self, n: int) -> None:
        """``n`` delivery tasks written for one event (0 when nothing matched)."""
        if n > 0:
            self._routed.inc(n)

    # Dispatcher

    def attempt(self, outcome: str, status_class: str, seconds: float) -> None:
        """One HTTP attempt finished: ``outcome`` is success/retry/dead_letter, ``status_class``
        2xx/4xx/5xx or the transport error kind (network, timeout, blocked)."""
        count, duration = self._attempt_by[outcome, status_class]
        count.inc()
        duration.observe(max(seconds, 0.0))

    def _attempt_children(self, key: tuple[str, str]) -> tuple[Counter, Histogram]:
        outcome = self._outcome(category(key[0]))
        status_class = self._status_class(category(key[1]))
        return (
            self._attempts.labels(outcome=outcome, status_class=status_class),
            self._attempt_seconds.labels(outcome=outcome),
        )

    def delivery_outcome(self, outcome: str) -> None:
        """A delivery finished for good: ``success`` or ``dead_letter``."""
        self._deliveries_by[outcome].inc()

    def duplicate_skipped(self) -> None:
        self._duplicates.inc()

    def end_to_end(self, seconds: float) -> None:
        """Event timestamp to 2xx, in seconds."""
        self._end_to_end.observe(max(seconds, 0.0))

    def retry_scheduled(self, delay: str) -> None:
        """A task handed to the retry topic of ``delay`` (e.g. ``"30s"``)."""
        self._retries_by[delay].inc()

    def dead_letter(self, reason: str) -> None:
        """A task written to the dead-letter topic for ``reason`` (e.g. retries_exhausted)."""
        self._dead_letters_by[reason].inc()

    def in_flight_inc(self) -> None:
        self._in_flight.inc()

    def in_flight_dec(self) -> None:
        self._in_flight.dec()

    def set_in_flight(self, n: int) -> None:
        """Attempts in progress, for callers that track the count themselves."""
        self._in_flight.set(max(n, 0))

    def parked(self, n: int) -> None:
        """Ordered tasks currently held back behind a retrying predecessor."""
        self._parked.set(max(n, 0))

    def spilled(self, n: int) -> None:
        """Tasks moved to ``parked`` under memory pressure (see worker.dispatch.spill)."""
        self._spilled.inc(n)

    def read_ahead(self, held_bytes: int) -> None:
        """Memory held by tasks read ahead of the deliveries being attempted (estimated)."""
        self._read_ahead.set(max(held_bytes, 0))

    def oldest_due_retry(self, delay: str, seconds: float) -> None:
        """How far past due the oldest task of retry topic ``delay`` is (0 when none is)."""
        self._oldest_due_by[delay].set(max(seconds, 0.0))

    # Kafka and the subscription table

    def consumer_lag(self, group: str, topic: str, partition: int, lag: int) -> None:
        """Lag of one assigned partition; negative values (stale watermarks) read as 0."""
        self._lag.labels(group=group, topic=topic, partition=str(partition)).set(max(lag, 0))

    def forget_partition(self, group: str, topic: str, partition: int) -> None:
        """Drop a revoked partition's lag series so it does not linger at its last value."""
        # Not reported yet, or already forgotten: nothing to drop.
        with contextlib.suppress(KeyError):
            self._lag.remove(group, topic, str(partition))

    def subscriptions(self, counts: Mapping[str, int]) -> None:
        """Subscription counts by status; known statuses missing from ``counts`` read 0."""
        for status in SUBSCRIPTION_STATUSES:
            if status not in counts:
                self._subscriptions.labels(status=status).set(0)
        for status, n in counts.items():
            self._subscriptions.labels(status=self._sub_status(verbatim(status))).set(n)

    # Process

    def spans_dropped(self, reason: str, n: int) -> None:
        """``n`` trace spans lost: ``queue_full`` or ``export_failed`` (any thread)."""
        self._spans_dropped.labels(reason=reason).inc(n)

    def schema_registry(self, up: bool, held_partitions: int) -> None:
        self._registry_up.set(1 if up else 0)
        self._held.set(held_partitions)

    def loop_lag(self, seconds: float) -> None:
        """One sample of the event loop's lag (see worker.observability.looplag)."""
        self._loop_lag.observe(max(seconds, 0.0))

    def build_info(self, version: str) -> None:
        """``webhook_build_info{version, python}`` = 1."""
        self._build.info({"version": version, "python": platform.python_version()})

    def render(self) -> tuple[bytes, str]:
        """The registry in Prometheus text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
