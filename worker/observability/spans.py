"""The pipeline's spans: ``route`` per input event and ``deliver`` per attempt.

Callers hold a :class:`Spans` only when tracing is on (None otherwise), so with tracing off
no span object is made. Context comes in as W3C ``traceparent``/``tracestate`` Kafka headers
and travels on the delivery task's fields of the same names (docs/tracing.md). Attribute
names follow the OpenTelemetry semantic conventions (messaging, HTTP client); ours are under
``webhook.``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation import get_current_span, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from worker.model import DeliveryTask, Event
from worker.subscriptions.model import Subscription

__all__ = [
    "TRACE_HEADERS",
    "Spans",
    "context_headers",
    "deliver_outcome",
    "deliver_request",
    "deliver_response",
    "record_headers",
]

TRACE_HEADERS = ("traceparent", "tracestate")
MAX_LISTED_SUBSCRIPTIONS = 32
_W3C = TraceContextTextMapPropagator()

KafkaHeaders = list[tuple[str, bytes | str | None]] | dict[str, bytes | str | None] | None


class Spans:
    """Starts the pipeline's spans with ``tracer``; ``propagate`` is WEBHOOK_TRACE_PROPAGATE."""

    def __init__(self, tracer: Tracer, *, propagate: bool = False) -> None:
        self._tracer = tracer
        self.propagate = propagate

    # -- route ------------------------------------------------------------------------

    def route(self, headers: KafkaHeaders, topic: str, partition: int, offset: int) -> Span:
        """Start ``route`` for an input record, as the child of the producer's span when its
        headers carry one (the sampler decides, as for any span)."""
        return self._tracer.start_span(
            "route",
            context=_W3C.extract(_trace_headers(headers)),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": topic,
                "messaging.destination.partition.id": str(partition),
                "messaging.kafka.offset": offset,
            },
        )

    @staticmethod
    def routed(
        span: Span, event: Event, subs: Sequence[Subscription]
    ) -> tuple[str | None, str | None]:
        """End ``route`` for an event matched to ``subs``; returns the (traceparent,
        tracestate) its tasks carry, both None when it was not sampled."""
        if not span.is_recording():  # the sampler said no: nothing to describe or carry
            return None, None
        # One string, not a list: the SDK validates a sequence item by item (measured: the
        # list was the route span's costliest attribute).
        subscription_ids = ",".join([sub.id for sub in subs[:MAX_LISTED_SUBSCRIPTIONS]])
        span.set_attributes(
            {
                "webhook.workspace": event.workspace,
                "webhook.event.type": event.event,
                "webhook.event.id": event.id,
                "webhook.subscriptions.matched": len(subs),
                "webhook.subscription.ids": subscription_ids,
            }
        )
        span.end()
        if not span.get_span_context().trace_flags.sampled:
            return None, None
        carrier = context_headers(span)
        return carrier["traceparent"], carrier.get("tracestate")

    @staticmethod
    def invalid(span: Span, error: str) -> None:
        """End ``route`` for a record that went to ``invalid-events``."""
        span.set_status(Status(StatusCode.ERROR, error[:200]))
        span.set_attribute("error.type", error.split(":", 1)[0][:40])
        span.end()

    # -- deliver ----------------------------------------------------------------------

    def deliver(self, task: DeliveryTask) -> Span | None:
        """Start ``deliver`` for one attempt of a traced task (None for an untraced one):
        a child of the event's ``route``, whichever process and hop it is attempted on."""
        if not task.traceparent:
            return None
        carrier = {"traceparent": task.traceparent}
        if task.tracestate:
            carrier["tracestate"] = task.tracestate
        parent = _W3C.extract(carrier)
        if not get_current_span(parent).get_span_context().is_valid:
            return None
        # The event's id, type and workspace are on ``route``, the parent: not repeated here.
        attributes: dict[str, Any] = {
            "webhook.subscription.id": task.subscription_id,
            "webhook.delivery.id": task.delivery_id,
            "webhook.attempt": task.attempt + 1,
            "webhook.ordering.scope": task.scope,
        }
        if task.redrive_id:
            attributes["webhook.redrive.id"] = task.redrive_id
        return self._tracer.start_span(
            "deliver", context=parent, kind=SpanKind.CLIENT, attributes=attributes
        )


def deliver_request(span: Span, url: str, propagate: bool) -> dict[str, str]:
    """Record where the attempt goes (the host, never the path or query, which may hold
    tokens); returns the headers to add to the request (``traceparent`` when propagating)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    span.set_attributes(
        {"http.request.method": "POST", "server.address": parts.hostname or "", "server.port": port}
    )
    return context_headers(span) if propagate else {}


def deliver_response(span: Span, status: int | None, error_type: str | None) -> None:
    """The attempt's response status, or the transport error's kind when none came."""
    if status is not None:
        span.set_attribute("http.response.status_code", status)
        if status >= 400:
            error_type = str(status)
    if error_type is not None:
        span.set_attribute("error.type", error_type)
        span.set_status(Status(StatusCode.ERROR))


def deliver_outcome(
    span: Span,
    outcome: str,
    *,
    delay_ms: int | None = None,
    reason: str | None = None,
    attempt: int | None = None,
) -> None:
    """End ``deliver`` with what followed: ``delivered``, ``retry_scheduled`` (after
    ``delay_ms``), ``dead_lettered`` or ``disabled`` (with ``reason``)."""
    span.set_attribute("webhook.outcome", outcome)
    if attempt is not None:
        span.set_attribute("webhook.attempt", attempt)
    if delay_ms is not None:
        span.set_attribute("webhook.retry.delay_ms", delay_ms)
    if reason is not None:
        span.set_attribute("webhook.dead_letter.reason", reason)
    span.end()


def context_headers(span: Span) -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) naming ``span``."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=set_span_in_context(span, Context()))
    return carrier


def record_headers(span: Span | None = None) -> list[tuple[str, bytes]] | None:
    """Kafka record headers carrying ``span``'s context (default: the current span's), or
    None when there is no sampled span."""
    span = span if span is not None else get_current_span()
    if isinstance(span, NonRecordingSpan) or not span.get_span_context().trace_flags.sampled:
        return None
    return [(k, v.encode()) for k, v in context_headers(span).items()]


def _trace_headers(headers: KafkaHeaders) -> Mapping[str, str]:
    """``traceparent``/``tracestate`` among a record's headers (first of each), decoded."""
    if not headers:
        return {}
    items: Iterable[tuple[str, bytes | str | None]] = (
        headers.items() if isinstance(headers, dict) else headers
    )
    found: dict[str, str] = {}
    for name, value in items:
        lowered = name.lower()
        if lowered in TRACE_HEADERS and lowered not in found and value is not None:
            found[lowered] = value.decode("latin-1") if isinstance(value, bytes) else value
    return found
