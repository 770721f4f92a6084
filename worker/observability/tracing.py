"""OpenTelemetry set-up: a tracer provider that exports in batches, or nothing at all.

A composition root (:mod:`worker.app`, :mod:`worker.api.server`) calls :func:`open_tracing`
once. With ``Settings.tracing`` unset it returns None and nothing is built: no provider, no
exporter thread. Otherwise spans go through the SDK's ``BatchSpanProcessor`` (bounded queue,
its own export thread), so ending a span never waits for the network; spans that do not fit
the queue, and batches the collector refused or never answered, are counted through
``on_dropped`` (the ``webhook_trace_spans_dropped_total`` metric). See docs/tracing.md.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Tracer

from worker import __version__
from worker.config import Settings

__all__ = ["DEFAULT_SERVICE_NAME", "SHUTDOWN_TIMEOUT_S", "Tracing", "open_tracing"]

log = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "webhook-worker"
SHUTDOWN_TIMEOUT_S = 5.0
INSTRUMENTATION = "webhook_worker"

OnDropped = Callable[[str, int], None]  # (reason, number of spans)


class Tracing:
    """The process's tracer, and whether attempts carry ``traceparent`` outward."""

    def __init__(
        self, provider: TracerProvider, *, propagate: bool, queue: BoundedBatch | None = None
    ) -> None:
        self.provider = provider
        self.tracer: Tracer = provider.get_tracer(INSTRUMENTATION, __version__)
        self.propagate = propagate
        self._queue = queue

    def flush(self, timeout_s: float = SHUTDOWN_TIMEOUT_S) -> bool:
        return self.provider.force_flush(int(timeout_s * 1000))

    def shutdown(self, timeout_s: float = SHUTDOWN_TIMEOUT_S) -> None:
        """Export what is queued, for at most ``timeout_s``: a collector that is down must
        not hold up the process's exit (the SDK's own shutdown may wait 30 s)."""
        done = threading.Thread(target=self.provider.shutdown, name="otel-shutdown", daemon=True)
        done.start()
        done.join(timeout_s)
        if done.is_alive():
            log.warning("tracing: spans not exported within %.0f s of shutdown", timeout_s)


def open_tracing(
    settings: Settings, on_dropped: OnDropped, exporter: SpanExporter | None = None
) -> Tracing | None:
    """The tracing ``settings`` ask for, or None when it is off. ``exporter`` replaces the
    one the settings name (tests pass an in-memory exporter)."""
    if exporter is None:
        if settings.tracing is None:
            return None
        exporter = _exporter(settings.tracing)
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)  # the sampler from OTEL_TRACES_SAMPLER[_ARG]
    queue = BoundedBatch(exporter, on_dropped, settings.trace_queue_size, settings.trace_batch_size)
    provider.add_span_processor(queue)
    return Tracing(provider, propagate=settings.trace_propagate, queue=queue)


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    # Imported here: only a process that exports over OTLP pays for protobuf and requests.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout from OTEL_EXPORTER_OTLP_*


class BoundedBatch(SpanProcessor):
    """The SDK's ``BatchSpanProcessor`` with its drops counted.

    The SDK drops a span silently when its queue is full; here the spans handed over and the
    spans taken by the export thread are counted, and a span that would not fit is dropped
    (and counted) before it reaches the SDK's queue. Batches the exporter fails are counted
    too. Both counts go to ``on_dropped`` (called from either thread).
    """

    def __init__(
        self, exporter: SpanExporter, on_dropped: OnDropped, max_queue: int, max_batch: int = 512
    ) -> None:
        self._on_dropped = on_dropped
        self._max = max_queue
        self._queued = 0
        self._lock = threading.Lock()
        self._batch = BatchSpanProcessor(
            _CountingExporter(exporter, self._taken, on_dropped),
            max_queue_size=max_queue,
            max_export_batch_size=min(max_batch, max_queue),  # the SDK refuses a larger one
        )

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is None or not span.context.trace_flags.sampled:
            return
        with self._lock:
            full = self._queued >= self._max
            if not full:
                self._queued += 1
        if full:
            self._on_dropped("queue_full", 1)
            return
        self._batch.on_end(span)

    def _taken(self, n: int) -> None:
        with self._lock:
            self._queued = max(0, self._queued - n)

    def shutdown(self) -> None:
        self._batch.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._batch.force_flush(timeout_millis)


class _CountingExporter(SpanExporter):
    """Tells the queue how many spans left it, and counts the ones an export lost."""

    def __init__(
        self, inner: SpanExporter, taken: Callable[[int], None], on_dropped: OnDropped
    ) -> None:
        self._inner = inner
        self._taken = taken
        self._on_dropped = on_dropped

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._taken(len(spans))
        try:
            result = self._inner.export(spans)
        except Exception:  # an exporter bug must not kill the export thread
            log.exception("tracing: span export crashed")
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self._on_dropped("export_failed", len(spans))
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)
