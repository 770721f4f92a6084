"""Scenario T: what tracing costs per delivery (docs/tracing.md, docs/performance.md).

Scenario A's shape (100 subscriptions, an instant receiver, a backlog drained by one worker
process), run with tracing off, on at 1 % sampling and on at 100 %, in rounds that alternate
the three (each round starting with the next) so that the shared machine's drift and the
broker's growing data fall on each alike. With tracing on the spans
go to a real Jaeger v2 (tests/support/jaeger.py) over OTLP/HTTP. The measure is the worker's
CPU per delivery (``worker_cpu_ms_per_delivery``); targets: at most 3 % over off at 1 %, at
most 25 % at 100 %.
"""

from __future__ import annotations

import re
import statistics
from typing import Any

import httpx

from bench.receivers import instant_receiver
from bench.rig import backlog, drain, make_settings, subscribe, workers
from tests.support.jaeger import Jaeger

VARIANTS: dict[str, dict[str, str]] = {
    "off": {},
    "sampled_1pct": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio"},
    "sampled_all": {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
}
RATIO = {"sampled_1pct": "0.01", "sampled_all": "1.0"}
ROUNDS = 5


def scenario_t(run: Any) -> dict[str, Any]:
    events = run.scaled(20_000, 2_000)
    workspaces = [f"wt{i}" for i in range(100)]
    rx = instant_receiver(run.receiver)
    measured: dict[str, list[float]] = {name: [] for name in VARIANTS}
    dropped: dict[str, list[float]] = {name: [] for name in VARIANTS}
    try:
        with Jaeger() as jaeger:  # the traced variants export every sampled span to it
            names = list(VARIANTS)
            for round_no in range(ROUNDS):
                # Each round starts with another variant: none always follows the same one.
                for name in names[round_no % 3 :] + names[: round_no % 3]:
                    otel = VARIANTS[name]
                    env = dict(otel)
                    if otel:
                        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = jaeger.otlp_endpoint
                        env["OTEL_TRACES_SAMPLER_ARG"] = RATIO[name]
                        env["OTEL_SERVICE_NAME"] = f"bench-{name}"
                    rx.reset()
                    settings = make_settings(run.bootstrap, f"t{round_no}{name[:5]}", 6)
                    subscribe(settings, rx, workspaces)
                    backlog(settings, workspaces, events)
                    with workers(settings, 1, extra_env=env) as w:
                        result = drain(w, rx.count, events, 600, {"worker": w.pids()}, steady=True)
                        dropped[name].append(_dropped(w.ports[0]))
                    measured[name].append(result["worker_cpu_ms_per_delivery"])
    finally:
        rx.close()
    median = {name: statistics.median(values) for name, values in measured.items()}
    off = median["off"]
    return {
        "events": events,
        "subscriptions": len(workspaces),
        "rounds": ROUNDS,
        "receiver": rx.kind,
        "worker_cpu_ms_per_delivery": measured,
        "median_ms": {k: round(v, 4) for k, v in median.items()},
        "overhead_1pct": round(median["sampled_1pct"] / off - 1, 4),
        "overhead_all": round(median["sampled_all"] / off - 1, 4),
        # Spans the worker could not export (its queue was full): it paid no encoding for them.
        "spans_dropped": dropped,
    }


def _dropped(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found = re.findall(r"^webhook_trace_spans_dropped_total\{[^}]*\} (\S+)$", text, re.M)
    return sum(float(value) for value in found)
