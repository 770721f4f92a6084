"""``python -m bench.jaeger_screenshot --ui-assets DIR --out docs/images/jaeger-trace.png``:
one real webhook-worker trace in the Jaeger UI, as the PNG of docs/tracing.md.

It starts a Kafka node (bench/broker.py), a Jaeger v2 (tests/support/jaeger.py) serving the
jaeger-ui assets in ``DIR``, a receiver that answers 503 to the first attempt and 200 after,
and one worker process with OpenTelemetry at sampling 1.0; it produces one event under a
producer span (its ``traceparent`` in the record headers), waits until Jaeger holds the
producer span, ``route`` and both ``deliver`` spans, opens the trace's page in headless
Chromium (tests/support/browser.py) with every span shown and the first attempt's tags open,
and saves the page. Not a test: the Go module Jaeger is built from has no UI, and the UI
is built from jaeger-ui's own repository with npm (docs/tracing.md says how).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.broker import local_broker
from bench.rig import make_settings
from tests.support.jaeger import Jaeger, produce_traced, tags
from tests.support.receiver import Receiver, fail_first
from tests.support.subs import SubsWriter
from tests.support.worker import ProcessWorker
from worker.config import Settings, parse_retry_delays
from worker.kafka.processes import free_port
from worker.subscriptions.secrets import generate_secret

HOW_TO_GET_THE_UI = (
    "jaeger_screenshot: give the jaeger-ui build (--ui-assets DIR or JAEGER_UI_ASSETS): "
    "git clone -b v1.75.0 https://github.com/jaegertracing/jaeger-ui && cd jaeger-ui && "
    "npm ci --engine-strict=false && cd packages/jaeger-ui && npm run build, "
    "then DIR is packages/jaeger-ui/build"
)
EVENT = {
    "id": "evt_2Qm8c1",
    "event": "deal.updated",
    "workspace": "acme",
    "record": {"id": "deal_1042", "stage": "proposal"},
    "changes": {"stage": {"old": "qualification", "new": "proposal"}},
}
Spans = list[dict[str, Any]]


def _produce(jaeger: Jaeger, settings: Settings) -> str:
    """Produce :data:`EVENT` under a producer span of service ``crm-backend``, named as
    opentelemetry-instrumentation-confluent-kafka names its producer spans; the trace id."""
    topic = settings.input_topics
    trace_id, _ = produce_traced(
        jaeger,
        settings.bootstrap_servers,
        topic,
        EVENT,
        b"acme",  # the key: the workspace
        service="crm-backend",
        span_name=f"{topic} send",
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
        },
    )
    return trace_id


def _complete(spans: Spans) -> bool:
    """The producer span, ``route``, and two ``deliver`` spans: a retry, then delivered."""
    names = [s["operationName"] for s in spans]
    outcomes = {tags(s).get("webhook.outcome") for s in spans if s["operationName"] == "deliver"}
    return (
        len(spans) == 4
        and names.count("route") == 1
        and names.count("deliver") == 2
        and outcomes == {"retry_scheduled", "delivered"}
    )


def _screenshot(jaeger: Jaeger, trace_id: str, out: Path, width: int, height: int) -> None:
    """The trace's page, its header slim (the summary and minimap folded, so that all four
    span rows fit), every span row shown and the first ``deliver``'s tags open, as ``out``."""
    from tests.support.browser import chromium, find, wait

    out.parent.mkdir(parents=True, exist_ok=True)
    with chromium(width, height) as driver:
        driver.execute_cdp_cmd(  # the page itself is width x height, whatever the window has
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        driver.get(f"{jaeger.url}/trace/{trace_id}")
        find(driver, ".TracePageHeader", 60)
        rows = ".span-row .span-name"
        wait(lambda: len(driver.find_elements("css selector", rows)) == 4, 30, "four span rows")
        find(driver, ".TracePageHeader--detailToggle").click()
        delivers = [e for e in driver.find_elements("css selector", rows) if "deliver" in e.text]
        delivers[0].click()  # the first attempt: its 503 and retry_scheduled
        find(driver, ".AccordianKeyValues--header", 15).click()  # its tags
        find(driver, ".KeyValueTable", 15)
        driver.execute_cdp_cmd(  # no hover highlight left on what was clicked
            "Input.dispatchMouseEvent", {"type": "mouseMoved", "x": width - 2, "y": height - 2}
        )
        time.sleep(1)  # let the layout settle
        driver.save_screenshot(str(out))
    print(f"jaeger_screenshot: {out} ({jaeger.url}/trace/{trace_id})")


def run(ui_assets: Path, out: Path, width: int, height: int) -> None:
    with local_broker() as broker, Receiver() as receiver:
        run_id = uuid.uuid4().hex[:6]  # a fresh input topic, even on a shared BENCH_BOOTSTRAP
        settings = make_settings(
            broker.bootstrap,
            f"jaegershot{run_id}",
            1,
            input_topics=f"crm.deals.{run_id}",
            retry_delays_ms=parse_retry_delays("1s"),
        )
        secret = generate_secret()
        url = receiver.endpoint("deals", secret, fail_first(1, 503))
        SubsWriter(settings).create("acme", url, ["deal.*"], secret=secret)
        with Jaeger(ui_assets=ui_assets) as jaeger:
            os.environ.update(
                OTEL_EXPORTER_OTLP_ENDPOINT=jaeger.otlp_endpoint,
                OTEL_TRACES_SAMPLER="parentbased_traceidratio",
                OTEL_TRACES_SAMPLER_ARG="1.0",
                OTEL_BSP_SCHEDULE_DELAY="100",
            )
            worker = ProcessWorker(settings, free_port())
            try:
                worker.wait_ready()
                trace_id = _produce(jaeger, settings)
                receiver.wait_for_success("deals", 1, timeout=60)
                jaeger.wait_trace(trace_id, _complete, timeout=90)
                _screenshot(jaeger, trace_id, out, width, height)
            finally:
                if worker.proc.poll() is None:
                    worker.terminate()
                worker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--ui-assets",
        type=Path,
        default=os.environ.get("JAEGER_UI_ASSETS"),
        help="jaeger-ui's build output (packages/jaeger-ui/build); default $JAEGER_UI_ASSETS",
    )
    parser.add_argument("--out", type=Path, default=Path("docs/images/jaeger-trace.png"))
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args()
    if args.ui_assets is None or not (args.ui_assets / "index.html").is_file():
        print(HOW_TO_GET_THE_UI, file=sys.stderr)
        raise SystemExit(2)
    run(args.ui_assets.resolve(), args.out, args.width, args.height)


if __name__ == "__main__":
    main()
