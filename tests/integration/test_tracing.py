"""One event, one trace, in a real Jaeger v2: the producer's span, ``route``, and a ``deliver``
span per attempt, through a retry, a kill -9 and restart, and a re-driven dead letter; the
attempt's traceparent on the POST when asked; nothing with tracing off; a Jaeger that is down
costs counted spans and no deliveries (docs/tracing.md)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from confluent_kafka import Producer

from tests.support.api import api_settings, client, running_api, token_maker
from tests.support.cli import cli_json
from tests.support.jaeger import Jaeger, parent_id, produce_traced, tags
from tests.support.kafka import consume_all
from tests.support.receiver import Receiver, Reply
from tests.support.subs import SubsWriter
from tests.support.worker import ProcessWorker, ThreadWorker
from worker.config import Settings
from worker.kafka.processes import free_port
from worker.subscriptions.secrets import generate_secret

pytestmark = pytest.mark.timeout(240)

Spans = list[dict[str, Any]]


@pytest.fixture(scope="module")
def jaeger() -> Iterator[Jaeger]:
    with Jaeger() as running:
        yield running


def _produce_traced(jaeger: Jaeger, settings: Settings, event: dict[str, Any]) -> tuple[str, str]:
    """Produce ``event`` under a producer span of ``test-producer``; (trace id, span id)."""
    return produce_traced(
        jaeger,
        settings.bootstrap_servers,
        settings.input_topics,
        event,
        b"k",
        service="test-producer",
        span_name="publish",
    )


def _delivers(spans: Spans, sub_id: str) -> Spans:
    found = [
        s
        for s in spans
        if s["operationName"] == "deliver" and tags(s)["webhook.subscription.id"] == sub_id
    ]
    return sorted(found, key=lambda s: (tags(s)["webhook.attempt"], s["startTime"]))


def _outcomes(spans: Spans) -> list[tuple[Any, ...]]:
    return [
        (
            tags(s)["webhook.attempt"],
            tags(s).get("http.response.status_code"),
            tags(s)["webhook.outcome"],
        )
        for s in spans
    ]


def _otel_env(monkeypatch: pytest.MonkeyPatch, endpoint: str, **more: str) -> None:
    """The OpenTelemetry variables a worker process inherits; a short batch delay so spans
    reach Jaeger before a kill -9."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    for key, value in more.items():
        monkeypatch.setenv(key, value)


@pytest.mark.slow
def test_one_trace_from_the_producer_through_retry_crash_and_redrive(
    jaeger: Jaeger, settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_factory(partitions=1, retry_delays="1s,2s,4s,8s")
    writer = SubsWriter(settings)
    restarted = threading.Event()
    fixed = threading.Event()
    with Receiver() as receiver:
        secret = generate_secret()
        # a: one 503, then 200. b: 503 until the worker was killed and restarted.
        # c: 400 (a dead letter at once) until it is fixed, then re-driven.
        a = writer.create("acme", receiver.endpoint("a", secret, _first(503)), ["*"], secret=secret)
        b_url = receiver.endpoint(
            "b", secret, lambda n, body: Reply(200 if restarted.is_set() else 503)
        )
        b = writer.create("acme", b_url, ["*"], secret=secret)
        c_url = receiver.endpoint(
            "c", secret, lambda n, body: Reply(200 if fixed.is_set() else 400)
        )
        c = writer.create("acme", c_url, ["*"], secret=secret)
        _otel_env(monkeypatch, jaeger.otlp_endpoint, OTEL_RESOURCE_ATTRIBUTES="test.run=first")
        first = ProcessWorker(settings, free_port())
        try:
            first.wait_ready()
            trace_id, producer_span = _produce_traced(
                jaeger, settings, {"id": "evt_traced", "event": "deal.updated", "workspace": "acme"}
            )
            jaeger.wait_trace(
                trace_id,
                lambda s: (
                    _delivered(s, a.id) and bool(_delivers(s, b.id)) and bool(_delivers(s, c.id))
                ),
            )
            first.kill()
        finally:
            first.close()
        monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "test.run=second")
        restarted.set()
        second = ProcessWorker(settings, free_port())
        try:
            second.wait_ready()
            receiver.wait_for_success("b", 1, timeout=60)
            fixed.set()
            redriven = cli_json(settings, "dlq", "redrive", "--subscription", c.id, "--rate", "0")
            assert redriven["sent"] == 1
            receiver.wait_for_success("c", 1, timeout=60)
            spans = jaeger.wait_trace(
                trace_id,
                lambda s: _delivered(s, b.id) and _delivered(s, c.id),
            )
        finally:
            second.terminate()
            second.close()

    (producer,) = [s for s in spans if s["serviceName"] == "test-producer"]
    assert producer["spanID"] == producer_span
    (route,) = [s for s in spans if s["operationName"] == "route"]
    assert parent_id(route) == producer_span
    assert tags(route)["webhook.subscriptions.matched"] == 3
    assert tags(route)["webhook.event.id"] == "evt_traced"
    assert tags(route)["span.kind"] == "consumer"
    delivers = [s for s in spans if s["operationName"] == "deliver"]
    for span in delivers:
        assert parent_id(span) == route["spanID"]
        assert span["traceID"] == trace_id
        assert tags(span)["span.kind"] == "client"
        assert tags(span)["server.address"] == "127.0.0.1"
        assert tags(span)["http.request.method"] == "POST"
    retried = _delivers(spans, a.id)
    assert _outcomes(retried)[:2] == [(1, 503, "retry_scheduled"), (2, 200, "delivered")]
    assert tags(retried[0])["webhook.retry.delay_ms"] == 1000
    assert tags(retried[0])["error.type"] == "503"
    # b: failed attempts in the first process; the attempt after the kill in the second.
    crashed = _delivers(spans, b.id)
    assert crashed[0]["process_tags"]["test.run"] == "first"
    assert _outcomes(crashed)[0] == (1, 503, "retry_scheduled")
    assert crashed[-1]["process_tags"]["test.run"] == "second"
    assert _outcomes(crashed)[-1][1:] == (200, "delivered")
    dead, again = _delivers(spans, c.id)[0], _delivers(spans, c.id)[-1]
    assert _outcomes([dead]) == [(1, 400, "dead_lettered")]
    assert tags(dead)["webhook.dead_letter.reason"] == "client_error"
    assert tags(again)["webhook.outcome"] == "delivered"
    assert tags(again)["webhook.redrive.id"]
    assert again["process_tags"]["test.run"] == "second"


def _first(status: int) -> Callable[[int, bytes], Reply]:
    return lambda n, body: Reply(status if n == 1 else 200)


def _delivered(spans: Spans, sub_id: str) -> bool:
    return any(tags(s)["webhook.outcome"] == "delivered" for s in _delivers(spans, sub_id))


def test_propagation_puts_the_attempts_traceparent_on_the_post(
    jaeger: Jaeger, settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    _otel_env(monkeypatch, jaeger.otlp_endpoint)
    settings = settings_factory(partitions=1, tracing="otlp", trace_propagate=True)
    with Receiver() as receiver:
        secret = generate_secret()
        sub = SubsWriter(settings).create(
            "acme", receiver.endpoint("p", secret), ["*"], secret=secret
        )
        worker = ThreadWorker(settings).start()
        try:
            worker.wait_ready()
            trace_id, _ = _produce_traced(
                jaeger, settings, {"id": "evt_p", "event": "deal.updated", "workspace": "acme"}
            )
            (got,) = receiver.wait_for_success("p", 1, timeout=60)
            spans = jaeger.wait_trace(trace_id, lambda s: bool(_delivers(s, sub.id)))
        finally:
            worker.stop()
    match = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01", got.headers["traceparent"])
    assert match is not None
    assert match.group(1) == trace_id
    assert match.group(2) == _delivers(spans, sub.id)[0]["spanID"]  # the attempt's own span


def _otel_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("OtelBatch")]


def test_tracing_off_exports_nothing_and_runs_no_exporter_thread(
    jaeger: Jaeger, settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The endpoint is set, and OTEL_SDK_DISABLED wins: the switch a process really reads.
    _otel_env(
        monkeypatch,
        jaeger.otlp_endpoint,
        OTEL_SDK_DISABLED="true",
        OTEL_SERVICE_NAME="webhook-worker-off",
    )
    settings = settings_factory(partitions=1)
    with Receiver() as receiver:
        secret = generate_secret()
        SubsWriter(settings).create("acme", receiver.endpoint("o", secret), ["*"], secret=secret)
        # Settings as a process builds them from its environment.
        in_process = ThreadWorker(Settings.from_env(_env_of(settings))).start()
        try:
            assert in_process.settings.tracing is None
            in_process.wait_ready()
            assert _otel_threads() == []
            # (The SDK is disabled in this process too: the producer's context is made up.)
            trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
            producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
            producer.produce(
                settings.input_topics,
                b'{"id": "evt_off", "event": "deal.updated", "workspace": "acme"}',
                headers=[("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01".encode())],
            )
            assert producer.flush(30) == 0
            (got,) = receiver.wait_for_success("o", 1, timeout=60)
            time.sleep(1.5)  # fifteen batch delays: anything exported would be there
        finally:
            in_process.stop()
    assert "traceparent" not in got.headers
    assert "webhook-worker-off" not in jaeger.services()
    assert jaeger.trace(trace_id) == []


def _env_of(settings: Settings) -> dict[str, str]:
    from tests.support.worker import settings_env

    env = settings_env(settings)
    env["WEBHOOK_METRICS_PORT"] = "0"
    return env


def test_a_collector_that_is_down_costs_counted_spans_not_deliveries(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    _otel_env(monkeypatch, down, OTEL_EXPORTER_OTLP_TIMEOUT="1")
    settings = settings_factory(
        partitions=1, tracing="otlp", trace_queue_size=16, trace_batch_size=8
    )
    events = [{"id": f"d{i}", "event": "deal.updated", "workspace": "acme"} for i in range(300)]
    with Receiver() as receiver:
        secret = generate_secret()
        SubsWriter(settings).create("acme", receiver.endpoint("d", secret), ["*"], secret=secret)
        worker = ThreadWorker(settings).start()
        try:
            worker.wait_ready()
            started = time.monotonic()
            producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
            for event in events:
                producer.produce(settings.input_topics, orjson.dumps(event), b"k")
            assert producer.flush(30) == 0
            receiver.wait_for_ids("d", {e["id"] for e in events}, timeout=60)
            took = time.monotonic() - started
            text = httpx.get(f"http://127.0.0.1:{worker.port}/metrics", timeout=5).text
        finally:
            worker.stop()
    assert took < 30
    dropped = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r'webhook_trace_spans_dropped_total\{reason="(\w+)"\} (\S+)', text)
    }
    # 300 routes and 300 attempts: at most 16 queued and 8 in the stuck export at a time.
    assert dropped["queue_full"] > 300, dropped


def test_api_requests_and_incoming_webhooks_are_traced_and_the_record_carries_it_on(
    jaeger: Jaeger,
    settings_factory: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    _otel_env(monkeypatch, jaeger.otlp_endpoint, OTEL_SERVICE_NAME="webhook-api-test")
    settings = replace(
        api_settings(settings_factory(partitions=1), str(tmp_path / "api")), tracing="otlp"
    )
    topic = f"in-{settings.topic_prefix}traced"
    caller_trace = "0af7651916cd43dd8448eb211c80319c"
    with token_maker(settings) as tokens, running_api(settings) as api:
        with client(api, tokens.workspace("acme")) as acme:
            created = acme.post(
                "/v1/workspaces/acme/sources",
                json={"name": "in", "topic": topic, "verify": "none"},
            )
            assert created.status_code == 201, created.text
        answer = httpx.post(
            f"{api.url}/in/{created.json()['id']}",
            content=b'{"hello": "world"}',
            headers={"traceparent": f"00-{caller_trace}-b7ad6b7169203331-01"},
            timeout=30,
        )
        assert answer.status_code in (200, 202), answer.text
    (record,) = consume_all(settings.bootstrap_servers, topic)
    match = re.fullmatch(
        r"00-([0-9a-f]{32})-([0-9a-f]{16})-01", record.headers["traceparent"].decode()
    )
    assert match is not None and match.group(1) == caller_trace
    spans = jaeger.wait_trace(caller_trace, lambda s: any(x["spanID"] == match.group(2) for x in s))
    (server,) = [x for x in spans if x["spanID"] == match.group(2)]
    assert server["serviceName"] == "webhook-api-test"
    assert tags(server)["span.kind"] == "server"
    assert parent_id(server) == "b7ad6b7169203331"  # the caller's span
    # The instrumentation's default names (OTEL_SEMCONV_STABILITY_OPT_IN=http: the stable ones).
    server_tags = tags(server)
    status = server_tags.get("http.response.status_code", server_tags.get("http.status_code"))
    assert status in (200, 202)
    traced = jaeger.traces("webhook-api-test")
    routes = {tags(x).get("http.route") for t in traced for x in t}
    assert "/v1/workspaces/{ws}/sources" in routes
