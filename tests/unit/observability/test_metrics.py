"""The metrics facade: each method shows up as the expected samples in render()."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from worker.observability.labels import CACHED_ARGUMENTS, LABEL_VALUE_LIMIT
from worker.observability.metrics import INVALID_REASONS, Metrics


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, _ = metrics.render()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


def test_render_content_type_and_prefix() -> None:
    metrics = Metrics()
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert names and all(name.startswith("webhook_") for name in names)


def test_known_series_exist_at_zero() -> None:
    metrics = Metrics(input_topics=["events"], retry_delays=["5s", "30s"])
    assert value(metrics, "webhook_events_consumed_total", topic="events") == 0
    assert value(metrics, "webhook_deliveries_total", outcome="success") == 0
    assert value(metrics, "webhook_deliveries_total", outcome="dead_letter") == 0
    assert value(metrics, "webhook_attempts_total", outcome="success", status_class="2xx") == 0
    assert value(metrics, "webhook_retries_scheduled_total", delay="30s") == 0
    assert value(metrics, "webhook_dead_letters_total", reason="retries_exhausted") == 0
    assert value(metrics, "webhook_subscriptions", status="ACTIVE") == 0
    assert value(metrics, "webhook_attempt_duration_seconds_count", outcome="retry") == 0
    # So rate() sees the first invalid record and the first deleted-subscription letter.
    for reason in ("decode", "validation", "too_large", "empty_record"):
        assert value(metrics, "webhook_events_invalid_total", reason=reason) == 0
    assert value(metrics, "webhook_dead_letters_total", reason="subscription_deleted") == 0


def test_each_instance_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.tasks_routed(3)
    assert value(first, "webhook_deliveries_routed_total") == 3
    assert value(second, "webhook_deliveries_routed_total") == 0


def test_router_counters() -> None:
    metrics = Metrics()
    metrics.event_consumed("events")
    metrics.event_consumed("events")
    metrics.event_invalid("Too Large")
    metrics.event_invalid("decode")
    metrics.tasks_routed(2)
    metrics.tasks_routed(0)
    assert value(metrics, "webhook_events_consumed_total", topic="events") == 2
    assert value(metrics, "webhook_events_invalid_total", reason="too_large") == 1
    assert value(metrics, "webhook_events_invalid_total", reason="decode") == 1
    assert value(metrics, "webhook_deliveries_routed_total") == 2


def test_attempt_counts_and_times() -> None:
    metrics = Metrics()
    metrics.attempt("success", "2xx", 0.004)
    metrics.attempt("retry", "timeout", 12.0)
    metrics.attempt("retry", "timeout", 20.0)
    assert value(metrics, "webhook_attempts_total", outcome="success", status_class="2xx") == 1
    assert value(metrics, "webhook_attempts_total", outcome="retry", status_class="timeout") == 2
    h = "webhook_attempt_duration_seconds"
    assert value(metrics, f"{h}_count", outcome="retry") == 2
    assert value(metrics, f"{h}_sum", outcome="retry") == 32.0
    assert value(metrics, f"{h}_bucket", outcome="success", le="0.005") == 1
    assert value(metrics, f"{h}_bucket", outcome="success", le="0.001") == 0
    assert value(metrics, f"{h}_bucket", outcome="retry", le="15.0") == 1
    assert value(metrics, f"{h}_bucket", outcome="retry", le="30.0") == 2


def test_delivery_outcomes_retries_and_dead_letters() -> None:
    metrics = Metrics()
    metrics.delivery_outcome("success")
    metrics.delivery_outcome("dead_letter")
    metrics.end_to_end(0.2)
    metrics.end_to_end(-1.0)  # clock skew between producer and worker
    metrics.retry_scheduled("30s")
    metrics.dead_letter("client_error")
    assert value(metrics, "webhook_deliveries_total", outcome="success") == 1
    assert value(metrics, "webhook_deliveries_total", outcome="dead_letter") == 1
    assert value(metrics, "webhook_end_to_end_latency_seconds_count") == 2
    assert value(metrics, "webhook_end_to_end_latency_seconds_bucket", le="0.01") == 1
    assert value(metrics, "webhook_retries_scheduled_total", delay="30s") == 1
    assert value(metrics, "webhook_dead_letters_total", reason="client_error") == 1


def test_gauges() -> None:
    metrics = Metrics()
    metrics.in_flight_inc()
    metrics.in_flight_inc()
    metrics.in_flight_dec()
    assert value(metrics, "webhook_in_flight_deliveries") == 1
    metrics.set_in_flight(7)
    assert value(metrics, "webhook_in_flight_deliveries") == 7
    metrics.parked(4)
    assert value(metrics, "webhook_parked_tasks") == 4
    metrics.oldest_due_retry("5s", 2.5)
    assert value(metrics, "webhook_retry_oldest_due_seconds", delay="5s") == 2.5


def test_consumer_lag_clamps_and_forgets() -> None:
    metrics = Metrics()
    metrics.consumer_lag("g", "events", 3, 42)
    metrics.consumer_lag("g", "events", 4, -5)
    lag = "webhook_consumer_lag"
    assert value(metrics, lag, group="g", topic="events", partition="3") == 42
    assert value(metrics, lag, group="g", topic="events", partition="4") == 0
    metrics.forget_partition("g", "events", 3)
    metrics.forget_partition("g", "events", 3)  # twice is harmless
    metrics.forget_partition("g", "never", 0)
    assert value(metrics, lag, group="g", topic="events", partition="3") is None
    assert value(metrics, lag, group="g", topic="events", partition="4") == 0


def test_subscriptions_by_status() -> None:
    metrics = Metrics()
    metrics.subscriptions({"ACTIVE": 5, "BLOCKED": 1})
    metrics.subscriptions({"ACTIVE": 6})
    assert value(metrics, "webhook_subscriptions", status="ACTIVE") == 6
    assert value(metrics, "webhook_subscriptions", status="BLOCKED") == 0
    assert value(metrics, "webhook_subscriptions", status="PENDING") == 0


def test_build_info() -> None:
    metrics = Metrics()
    metrics.build_info("1.2.3")
    found = [
        s
        for (name, labels), s in samples(metrics).items()
        if name == "webhook_build_info" and ("version", "1.2.3") in labels
    ]
    assert found == [1.0]


def test_free_text_labels_are_capped() -> None:
    metrics = Metrics()
    for i in range(LABEL_VALUE_LIMIT + 20):
        metrics.event_invalid(f"weird error {i}")
    series = [
        dict(labels)["reason"]
        for (name, labels) in samples(metrics)
        if name == "webhook_events_invalid_total"
    ]
    # The known reasons count towards the cap: 50 values in all, then "other".
    assert len(series) == LABEL_VALUE_LIMIT + 1
    overflow = 20 + len(INVALID_REASONS)
    assert value(metrics, "webhook_events_invalid_total", reason="other") == overflow


@pytest.fixture
def labels_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[tuple[str, tuple[str, ...]]]:
    """Every ``labels()`` call made from now on, by metric name and label values."""
    calls: Counter[tuple[str, tuple[str, ...]]] = Counter()
    original = MetricWrapperBase.labels

    def counting(self: MetricWrapperBase, *values: Any, **by_name: Any) -> Any:
        child = original(self, *values, **by_name)
        calls[self._name, tuple(str(v) for v in (*values, *by_name.values()))] += 1
        return child

    monkeypatch.setattr(MetricWrapperBase, "labels", counting)
    return calls


def test_repeated_calls_resolve_labels_once_and_add_up(
    labels_calls: Counter[tuple[str, tuple[str, ...]]],
) -> None:
    metrics = Metrics(input_topics=["events"], retry_delays=["5s"])
    labels_calls.clear()  # the series created at 0 by the constructor
    for _ in range(100):
        metrics.event_consumed("events")
        metrics.attempt("success", "2xx", 0.002)
        metrics.attempt("Retry", "5XX", 0.5)
        metrics.delivery_outcome("success")
        metrics.retry_scheduled("5s")
        metrics.dead_letter("client_error")
        metrics.event_invalid("decode")
        metrics.oldest_due_retry("5s", 1.5)
    # One labels() per metric and distinct arguments, not one per call.
    assert set(labels_calls.values()) == {1}
    assert len(labels_calls) == 10
    assert value(metrics, "webhook_events_consumed_total", topic="events") == 100
    assert value(metrics, "webhook_attempts_total", outcome="success", status_class="2xx") == 100
    assert value(metrics, "webhook_attempts_total", outcome="retry", status_class="5xx") == 100
    h = "webhook_attempt_duration_seconds"
    assert value(metrics, f"{h}_count", outcome="success") == 100
    assert value(metrics, f"{h}_bucket", outcome="success", le="0.0025") == 100
    assert value(metrics, f"{h}_bucket", outcome="retry", le="0.25") == 0
    assert value(metrics, f"{h}_sum", outcome="retry") == 50.0
    assert value(metrics, "webhook_deliveries_total", outcome="success") == 100
    assert value(metrics, "webhook_retries_scheduled_total", delay="5s") == 100
    assert value(metrics, "webhook_dead_letters_total", reason="client_error") == 100
    assert value(metrics, "webhook_events_invalid_total", reason="decode") == 100
    assert value(metrics, "webhook_retry_oldest_due_seconds", delay="5s") == 1.5


def test_spellings_of_one_value_share_its_series() -> None:
    metrics = Metrics()
    for spelling in ("Too Large", "too_large", " TOO-LARGE ", "too_large"):
        metrics.event_invalid(spelling)
    assert value(metrics, "webhook_events_invalid_total", reason="too_large") == 4


def test_the_cap_holds_for_repeated_calls() -> None:
    metrics = Metrics()
    newcomers = LABEL_VALUE_LIMIT - len(INVALID_REASONS)
    for _ in range(3):
        for i in range(newcomers + 10):
            metrics.event_invalid(f"weird error {i}")
    invalid = "webhook_events_invalid_total"
    # Admitted before the cap: their own series, every call counted there.
    assert value(metrics, invalid, reason="weird_error_0") == 3
    assert value(metrics, invalid, reason=f"weird_error_{newcomers - 1}") == 3
    # Past the cap: "other", on every repetition too.
    assert value(metrics, invalid, reason=f"weird_error_{newcomers}") is None
    assert value(metrics, invalid, reason="other") == 30


def test_remembered_arguments_are_bounded(
    labels_calls: Counter[tuple[str, tuple[str, ...]]],
) -> None:
    metrics = Metrics()
    labels_calls.clear()
    # Distinct spellings of one reason, more than are remembered: all still count.
    spellings = [f"decode{' ' * i}" for i in range(CACHED_ARGUMENTS + 5)]
    for spelling in spellings:
        metrics.event_invalid(spelling)
    assert labels_calls["webhook_events_invalid", ("decode",)] == len(spellings)
    for spelling in spellings:
        metrics.event_invalid(spelling)
    # The first CACHED_ARGUMENTS were remembered; the rest are resolved on every call.
    assert labels_calls["webhook_events_invalid", ("decode",)] == len(spellings) + 5
    assert value(metrics, "webhook_events_invalid_total", reason="decode") == 2 * len(spellings)
