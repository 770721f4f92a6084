"""The route and deliver spans: parents, attributes, the context the tasks carry, and what
an unsampled event leaves behind (worker.observability.spans; docs/tracing.md)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from fastavro import parse_schema, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import SpanKind, StatusCode

from worker.codec.avro import MARKER, AvroCodec, schema_dir
from worker.codec.records import RecordCodec
from worker.dispatch.delivery import Outcome
from worker.dispatch.outcomes import _trace_outcome
from worker.dispatch.policy import Next, Verdict
from worker.model import DeadLetter, DeliveryTask, Event
from worker.observability.spans import (
    Spans,
    deliver_request,
    deliver_response,
    record_headers,
)
from worker.subscriptions.model import Subscription

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PRODUCER_SPAN = "00f067aa0ba902b7"
PRODUCER = f"00-{TRACE_ID}-{PRODUCER_SPAN}-01"


@pytest.fixture
def traced() -> Iterator[tuple[Spans, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield Spans(provider.get_tracer("test")), exporter
    provider.shutdown()


def _event() -> Event:
    return Event("evt_1", "deal.updated", "acme", "deal", 1, {"record": {"id": 42}}, "events/0/7")


def _task(traceparent: str | None, tracestate: str | None = None) -> DeliveryTask:
    return DeliveryTask(
        "msg_1", "sub_1", "acme", "evt_1", "deal.updated", b"{}",
        ordering="key", traceparent=traceparent, tracestate=tracestate,
    )  # fmt: skip


def _sub(sub_id: str) -> Subscription:
    return Subscription(sub_id, "acme", "https://x.example/", ("*",), ())


def _by_name(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def test_route_continues_the_producers_trace_and_hands_its_context_to_the_tasks(
    traced: tuple[Spans, InMemorySpanExporter],
) -> None:
    spans, exporter = traced
    headers = [("other", b"x"), ("traceparent", PRODUCER.encode()), ("tracestate", b"v=1")]
    span = spans.route(headers, "events", 0, 7)
    traceparent, tracestate = Spans.routed(span, _event(), [_sub("sub_1"), _sub("sub_2")])
    (route,) = _by_name(exporter, "route")
    assert route.kind is SpanKind.CONSUMER
    assert format(route.context.trace_id, "032x") == TRACE_ID
    assert route.parent is not None and format(route.parent.span_id, "016x") == PRODUCER_SPAN
    attributes = dict(route.attributes or {})
    assert attributes["webhook.workspace"] == "acme"
    assert attributes["webhook.event.type"] == "deal.updated"
    assert attributes["webhook.subscriptions.matched"] == 2
    assert attributes["webhook.subscription.ids"] == "sub_1,sub_2"
    assert attributes["messaging.destination.name"] == "events"
    assert attributes["messaging.kafka.offset"] == 7
    assert traceparent == f"00-{TRACE_ID}-{route.context.span_id:016x}-01"
    assert tracestate == "v=1"


def test_an_event_without_context_starts_a_trace(
    traced: tuple[Spans, InMemorySpanExporter],
) -> None:
    spans, exporter = traced
    traceparent, _ = Spans.routed(spans.route(None, "events", 0, 1), _event(), [_sub("sub_1")])
    (route,) = _by_name(exporter, "route")
    assert route.parent is None
    assert traceparent is not None and traceparent.split("-")[1] == f"{route.context.trace_id:032x}"


def test_every_attempt_is_a_client_span_under_route_with_its_outcome(
    traced: tuple[Spans, InMemorySpanExporter],
) -> None:
    spans, exporter = traced
    traceparent, _ = Spans.routed(spans.route(None, "events", 0, 1), _event(), [_sub("sub_1")])
    task = _task(traceparent)
    first = spans.deliver(task)
    assert first is not None
    added = deliver_request(first, "https://hooks.example.com:8443/in/tok?secret=s", False)
    assert added == {}  # WEBHOOK_TRACE_PROPAGATE off: nothing goes out
    deliver_response(first, 503, None)
    task.attempt = 1
    _trace_outcome(first, Outcome(Verdict(Next.RETRY, "server_error"), status=503), 30_000)
    second = spans.deliver(task)
    assert second is not None
    deliver_request(second, "https://hooks.example.com:8443/in/tok", False)
    deliver_response(second, None, "timeout")
    task.attempt = 2
    _trace_outcome(second, Outcome(Verdict(Next.RETRY, "timeout")), None)

    (route,) = _by_name(exporter, "route")
    one, two = _by_name(exporter, "deliver")
    for span in (one, two):
        assert span.kind is SpanKind.CLIENT
        assert span.parent is not None and span.parent.span_id == route.context.span_id
        assert span.context.trace_id == route.context.trace_id
        assert span.status.status_code is StatusCode.ERROR
    a, b = dict(one.attributes or {}), dict(two.attributes or {})
    assert a["http.request.method"] == "POST"
    assert a["server.address"] == "hooks.example.com"
    assert a["server.port"] == 8443
    assert a["http.response.status_code"] == 503
    assert a["error.type"] == "503"
    assert a["webhook.attempt"] == 1
    assert a["webhook.outcome"] == "retry_scheduled"
    assert a["webhook.retry.delay_ms"] == 30_000
    assert a["webhook.subscription.id"] == "sub_1"
    assert a["webhook.delivery.id"] == "msg_1"
    assert a["webhook.ordering.scope"] == "key"
    assert not any("tok" in str(v) or "secret" in str(v) for v in a.values())
    assert b["webhook.attempt"] == 2
    assert b["error.type"] == "timeout"
    assert b["webhook.outcome"] == "dead_lettered"
    assert b["webhook.dead_letter.reason"] == "retries_exhausted"


@pytest.mark.parametrize(
    ("verdict", "outcome", "reason"),
    [
        (Verdict(Next.SUCCESS, "ok"), "delivered", None),
        (Verdict(Next.DEAD_LETTER, "client_error"), "dead_lettered", "client_error"),
        (Verdict(Next.DEAD_LETTER, "endpoint_disabled"), "disabled", "endpoint_disabled"),
    ],
)
def test_the_outcome_names_what_followed_the_attempt(
    traced: tuple[Spans, InMemorySpanExporter],
    verdict: Verdict,
    outcome: str,
    reason: str | None,
) -> None:
    spans, exporter = traced
    span = spans.deliver(_task(PRODUCER))
    assert span is not None
    _trace_outcome(span, Outcome(verdict), None)
    (deliver,) = _by_name(exporter, "deliver")
    attributes = dict(deliver.attributes or {})
    assert attributes["webhook.outcome"] == outcome
    assert attributes.get("webhook.dead_letter.reason") == reason


def test_propagation_adds_the_attempts_own_traceparent(
    traced: tuple[Spans, InMemorySpanExporter],
) -> None:
    spans, exporter = traced
    span = spans.deliver(_task(PRODUCER, "v=1"))
    assert span is not None
    added = deliver_request(span, "https://x.example/", True)
    span.end()
    (deliver,) = _by_name(exporter, "deliver")
    assert added == {
        "traceparent": f"00-{TRACE_ID}-{deliver.context.span_id:016x}-01",
        "tracestate": "v=1",
    }


def test_a_task_without_context_gets_no_span(traced: tuple[Spans, InMemorySpanExporter]) -> None:
    spans, exporter = traced
    assert spans.deliver(_task(None)) is None
    assert spans.deliver(_task("garbage")) is None
    assert exporter.get_finished_spans() == ()


def test_an_unsampled_event_writes_no_context_so_its_attempts_make_no_span() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    spans = Spans(provider.get_tracer("test"))
    span = spans.route(None, "events", 0, 1)  # a new trace: the ratio said no
    assert Spans.routed(span, _event(), [_sub("sub_1")]) == (None, None)
    unsampled = f"00-{TRACE_ID}-{PRODUCER_SPAN}-00"
    assert Spans.routed(spans.route([("traceparent", unsampled)], "e", 0, 2), _event(), []) == (
        None,
        None,
    )
    assert exporter.get_finished_spans() == ()
    assert record_headers() is None  # no current span: an incoming record gets no header


def test_the_context_travels_in_the_task_through_every_record_that_embeds_it() -> None:
    codec = RecordCodec(AvroCodec())
    task = _task(PRODUCER, "v=1")
    assert codec.decode_task(codec.encode_task(task)) == task
    letter = DeadLetter(task=task, reason="client_error", attempts=1, failed_ms=5)
    assert codec.decode_dead_letter(codec.encode_dead_letter(letter)).task.traceparent == PRODUCER
    kind, parked = codec.decode_parked(codec.encode_parked("head", task))
    assert (kind, parked.traceparent, parked.tracestate) == ("head", PRODUCER, "v=1")
    assert codec.decode_task(codec.encode_task(_task(None))).traceparent is None


def test_a_task_written_before_trace_context_decodes_untraced() -> None:
    """Records already in deliveries, retry topics, parked and dlq (schema v2) stay readable."""
    v2 = parse_schema(
        json.loads((schema_dir() / "history" / "delivery_task.v2.avsc").read_text()),
        named_schemas={},
    )
    out = io.BytesIO()
    out.write(MARKER + bytes.fromhex(fingerprint(to_parsing_canonical_form(v2), "CRC-64-AVRO")))
    record = {
        "delivery_id": "msg_1", "subscription_id": "sub_1", "workspace": "acme",
        "event_id": "evt_1", "event_type": "deal.updated", "body": b"{}",
        "ordering": "key", "ordering_key": b"deal/42",
    }  # fmt: skip
    schemaless_writer(out, v2, record)
    task = RecordCodec(AvroCodec()).decode_task(out.getvalue())
    assert (task.ordering_key, task.traceparent, task.tracestate) == (b"deal/42", None, None)
