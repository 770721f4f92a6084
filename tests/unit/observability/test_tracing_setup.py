"""Tracing set-up: when it is on, and that a full queue or a failing collector costs counted
drops, never a wait (worker.observability.tracing; docs/tracing.md)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from worker.config import ConfigError, Settings, tracing_exporter
from worker.observability.metrics import Metrics
from worker.observability.tracing import BoundedBatch, open_tracing


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"OTEL_SERVICE_NAME": "x"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, None),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, None),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, "otlp"),
    ],
)
def test_tracing_is_on_exactly_when_the_otel_variables_ask_for_an_exporter(
    env: dict[str, str], expected: str | None
) -> None:
    assert tracing_exporter(env) == expected
    assert Settings.from_env(env).tracing == expected


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_TRACES_EXPORTER": "zipkin"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
    ],
)
def test_an_exporter_that_is_not_installed_is_a_clear_error(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="OTEL_"):
        Settings.from_env(env)


def _otel_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("OtelBatch")]


def test_tracing_off_builds_nothing_and_starts_no_thread() -> None:
    before = _otel_threads()
    assert open_tracing(Settings.from_env({}), Metrics().spans_dropped) is None
    assert _otel_threads() == before


def _service_name() -> object:
    exporter = InMemorySpanExporter()
    tracing = open_tracing(Settings.from_env({}), lambda *_: None, exporter)
    assert tracing is not None
    tracing.tracer.start_span("x").end()
    tracing.flush()
    tracing.shutdown()
    return exporter.get_finished_spans()[0].resource.attributes["service.name"]


def test_the_service_is_named_webhook_worker_unless_otel_service_name_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _service_name() == "webhook-worker"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "hooks-eu")
    assert _service_name() == "hooks-eu"


class _Stuck(SpanExporter):
    """A collector that does not answer until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(10)
        self.exported += len(spans)
        return SpanExportResult.SUCCESS


def test_a_full_queue_drops_and_counts_without_waiting() -> None:
    exporter = _Stuck()
    drops: list[tuple[str, int]] = []
    queue = BoundedBatch(exporter, lambda reason, n: drops.append((reason, n)), max_queue=4)
    provider = TracerProvider()
    provider.add_span_processor(queue)
    tracer = provider.get_tracer("test")
    for _ in range(4):  # a full batch: the export thread takes it and gets stuck
        tracer.start_span("s").end()
    assert exporter.entered.wait(5)
    started = time.monotonic()
    for _ in range(4 + 3):  # four fit in the queue, three do not
        tracer.start_span("s").end()
    assert time.monotonic() - started < 0.5  # ending a span never waited for the collector
    assert drops == [("queue_full", 1)] * 3
    exporter.release.set()
    provider.force_flush(5000)
    assert exporter.exported == 8
    provider.shutdown()


class _Refusing(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.FAILURE


def test_batches_the_collector_fails_are_counted_in_the_metric() -> None:
    metrics = Metrics()
    tracing = open_tracing(Settings.from_env({}), metrics.spans_dropped, _Refusing())
    assert tracing is not None
    for _ in range(5):
        tracing.tracer.start_span("s").end()
    tracing.flush()
    text = metrics.render()[0].decode()
    assert 'webhook_trace_spans_dropped_total{reason="export_failed"} 5.0' in text
    assert 'webhook_trace_spans_dropped_total{reason="queue_full"} 0.0' in text
    tracing.shutdown()


def test_shutdown_is_bounded_when_the_collector_hangs() -> None:
    exporter = _Stuck()
    tracing = open_tracing(Settings.from_env({}), lambda *_: None, exporter)
    assert tracing is not None
    tracing.tracer.start_span("s").end()
    started = time.monotonic()
    threading.Thread(target=tracing.flush, daemon=True).start()
    assert exporter.entered.wait(5)
    tracing.shutdown(timeout_s=0.5)
    assert time.monotonic() - started < 3
    exporter.release.set()
