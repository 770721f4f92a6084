"""A real Jaeger v2 for the tracing tests: built once from the Go module proxy, run with
in-memory storage on free 127.0.0.1 ports, read through its query API.

Jaeger v2 is an OpenTelemetry Collector distribution: an OTLP receiver, a storage exporter
and the ``jaeger_query`` extension (``/api/traces``). Its module carries a ``replace``
directive, so ``go install module@version`` refuses it; the module is downloaded with
``go mod download`` and built in place instead. The binary is cached under
``~/.cache/webhook-worker/go/bin`` (``scripts/test`` builds it when missing: a few minutes).

``python -m tests.support.jaeger`` builds it and prints its path. The module holds no UI assets
(they are built from a separate repository, jaeger-ui), so by default this binary serves the
query API and a placeholder page, not the UI; the tests need no more. Given a directory of
jaeger-ui's built assets, ``Jaeger(ui_assets=...)`` serves the real UI from it
(``jaeger_query``'s ``ui: assets_path:``), as ``python -m bench.jaeger_screenshot`` does for
docs/tracing.md; the ``jaegertracing/jaeger`` image of docker-compose.yml has both built in.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
from confluent_kafka import Producer
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from worker.kafka.processes import free_port

__all__ = ["JAEGER_VERSION", "Jaeger", "binary", "ensure_binary", "produce_traced"]

JAEGER_MODULE = "github.com/jaegertracing/jaeger"
JAEGER_VERSION = "v1.75.0"  # the v2 collector-based binary (cmd/jaeger) of Jaeger 2.12
GO_HOME = Path.home() / ".cache" / "webhook-worker" / "go"

CONFIG = """\
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: []
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:{query}
    grpc:
      endpoint: 127.0.0.1:{query_grpc}
{ui}receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"""


def binary() -> Path:
    return GO_HOME / "bin" / f"jaeger-{JAEGER_VERSION}"


def ensure_binary() -> Path:
    """The cached Jaeger binary, built from the module proxy when it is missing."""
    target = binary()
    if target.exists():
        return target
    go = shutil.which("go")
    if go is None:
        raise RuntimeError(
            "Go is needed to build Jaeger for the tracing tests (apt install golang)"
        )
    env = {
        **os.environ,
        "GOMODCACHE": str(GO_HOME / "mod"),
        "GOFLAGS": "-buildvcs=false",
        "GOTOOLCHAIN": "local",
    }
    found = subprocess.run(
        [go, "mod", "download", "-json", f"{JAEGER_MODULE}@{JAEGER_VERSION}"],
        env=env, cwd=tempfile.gettempdir(), check=True, capture_output=True, timeout=1200,
    )  # fmt: skip
    source = json.loads(found.stdout)["Dir"]
    print("webhook-worker: building Jaeger for the tracing tests (once, minutes)", file=sys.stderr)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    subprocess.run(
        [go, "build", "-trimpath", "-o", str(partial), "./cmd/jaeger"],
        env=env, cwd=source, check=True, timeout=3600,
    )  # fmt: skip
    partial.rename(target)
    return target


class Jaeger:
    """One Jaeger process; ``otlp_endpoint`` takes spans, :meth:`traces` reads them back."""

    def __init__(self, ui_assets: Path | None = None) -> None:
        self.ui_assets = ui_assets  # jaeger-ui's build output, or None: the placeholder page
        self.otlp_port = free_port()
        self.query_port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="jaeger-")
        self._log = Path(self._dir.name) / "jaeger.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def otlp_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.otlp_port}"

    @property
    def url(self) -> str:
        """The query service's base URL: its API, and its UI when given ``ui_assets``."""
        return f"http://127.0.0.1:{self.query_port}"

    def start(self, timeout: float = 60) -> Jaeger:
        config = Path(self._dir.name) / "config.yaml"
        ui = ""
        if self.ui_assets is not None:
            ui = f"    ui:\n      assets_path: {json.dumps(str(self.ui_assets))}\n"
        config.write_text(
            CONFIG.format(otlp=self.otlp_port, query=self.query_port, query_grpc=free_port(), ui=ui)
        )
        with self._log.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(ensure_binary()), "--config", str(config)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jaeger exited: {self.output()[-2000:]}")
            if self._answers():
                return self
            time.sleep(0.2)
        raise RuntimeError(f"jaeger not ready within {timeout}s: {self.output()[-2000:]}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.otlp_port), timeout=1):
                pass
            return httpx.get(self._url("/api/services"), timeout=2).status_code == 200
        except (OSError, httpx.HTTPError):
            return False

    def _url(self, path: str) -> str:
        return f"{self.url}{path}"

    def output(self) -> str:
        return self._log.read_text(errors="replace") if self._log.exists() else ""

    def services(self) -> list[str]:
        data: list[str] = httpx.get(self._url("/api/services"), timeout=5).json()["data"] or []
        return data

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        """The spans of one trace (Jaeger's JSON: ``operationName``, ``references``,
        ``tags`` as a list of key/value), or [] when Jaeger has none of it."""
        response = httpx.get(self._url(f"/api/traces/{trace_id}"), timeout=5)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        data = response.json()["data"] or []
        return _with_processes(data[0]) if data else []

    def wait_trace(
        self,
        trace_id: str,
        done: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 60,
    ) -> list[dict[str, Any]]:
        """The spans of one trace once ``done`` holds for them; TimeoutError naming the
        spans' operations and outcomes when it does not within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        spans: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            spans = self.trace(trace_id)
            if done(spans):
                return spans
            time.sleep(0.25)
        summary = [(s["operationName"], tags(s).get("webhook.outcome")) for s in spans]
        raise TimeoutError(f"trace {trace_id} incomplete after {timeout}s: {summary}")

    def traces(self, service: str, limit: int = 100) -> list[list[dict[str, Any]]]:
        """Recent traces of ``service``, each a list of its spans."""
        response = httpx.get(
            self._url("/api/traces"),
            params={"service": service, "limit": limit, "lookback": "1h"},
            timeout=5,
        )
        response.raise_for_status()
        return [_with_processes(t) for t in response.json()["data"] or []]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._dir.cleanup()

    def __enter__(self) -> Jaeger:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _with_processes(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """The trace's spans, each with its process's ``serviceName`` and ``process_tags``."""
    processes = trace.get("processes", {})
    spans = []
    for span in trace["spans"]:
        process = processes.get(span.get("processID"), {})
        spans.append(
            {
                **span,
                "serviceName": process.get("serviceName"),
                "process_tags": {t["key"]: t["value"] for t in process.get("tags", [])},
            }
        )
    return spans


def tags(span: dict[str, Any]) -> dict[str, Any]:
    """A Jaeger span's tags as a dict."""
    return {tag["key"]: tag["value"] for tag in span.get("tags", [])}


def parent_id(span: dict[str, Any]) -> str | None:
    """The span id of a Jaeger span's parent (its CHILD_OF reference), or None."""
    for ref in span.get("references", []):
        if ref.get("refType") == "CHILD_OF":
            return str(ref["spanID"])
    return None


if __name__ == "__main__":
    print(ensure_binary())


def produce_traced(
    jaeger: Jaeger,
    bootstrap: str,
    topic: str,
    event: dict[str, Any],
    key: bytes,
    *,
    service: str,
    span_name: str,
    attributes: dict[str, str] | None = None,
) -> tuple[str, str]:
    """Produce ``event`` under a producer span of ``service`` exported to ``jaeger``, with its
    context in the record headers (as an instrumented producer does); returns (trace id,
    span id) in hex."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{jaeger.otlp_endpoint}/v1/traces"))
    )
    tracer = provider.get_tracer(service)
    with tracer.start_as_current_span(
        span_name, kind=SpanKind.PRODUCER, attributes=attributes
    ) as span:
        context = span.get_span_context()
        traceparent = f"00-{context.trace_id:032x}-{context.span_id:016x}-01"
        producer = Producer({"bootstrap.servers": bootstrap})
        producer.produce(
            topic, orjson.dumps(event), key, headers=[("traceparent", traceparent.encode())]
        )
        assert producer.flush(30) == 0
    provider.shutdown()
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"
