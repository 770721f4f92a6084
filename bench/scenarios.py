"""Scenarios A, B, C, D and F of issue 5 (D is in ``latency.py``, E in ``table.py``).

Each one gets its own topics on the shared dev broker, produces its events as a backlog first
(D paces them instead) and then drains them with real worker processes, and measures its own
ceiling in the same run, because the machine is shared and absolute numbers move.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import latency
from bench.profile import hot_spots
from bench.receivers import AiohttpReceiver, instant_receiver
from bench.rig import (
    ROOT,
    STEADY,
    Workers,
    backlog,
    drain,
    event,
    make_settings,
    raw_ceiling,
    subscribe,
    workers,
)

ENDPOINT_DELAY_MS = 50
ENDPOINTS = 500
PER_ENDPOINT_RATE = 1000 // ENDPOINT_DELAY_MS  # an ordered endpoint: one request at a time


@dataclass
class Run:
    """What every scenario needs: the broker, the scale and the results so far."""

    bootstrap: str
    scale: float = 1.0
    receiver: str = "auto"
    profile: Path | None = None
    results: dict[str, Any] = field(default_factory=dict)

    def scaled(self, full: int, minimum: int) -> int:
        return max(minimum, round(full * self.scale))

    def profile_path(self, scenario: str) -> Path | None:
        return self.profile / f"scenario_{scenario.lower()}.txt" if self.profile else None


def _profiled(out: dict[str, Any], profile: Path | None) -> dict[str, Any]:
    if profile is not None:
        out["profiled"] = "py-spy at 100 Hz (pauses the worker per sample: slower)"
        out["hot_spots"] = hot_spots(profile)
    return out


def _bodies(workspaces: list[str], count: int) -> list[bytes]:
    return [orjson.dumps(event(i, workspaces[i % len(workspaces)])) for i in range(count)]


def scenario_a(run: Run) -> dict[str, Any]:
    """CPU efficiency: 100 subscriptions, instant receiver, vs plain aiohttp with no Kafka."""
    events = run.scaled(50_000, 2_000)
    rx = instant_receiver(run.receiver)
    try:
        workspaces = [f"wa{i}" for i in range(100)]
        urls = [rx.url(ws) for ws in workspaces]
        ceiling = raw_ceiling(urls, _bodies(workspaces, events), 256, rx)
        rx.reset()
        settings = make_settings(run.bootstrap, "a", 6)
        subscribe(settings, rx, workspaces)
        backlog(settings, workspaces, events)
        profile = run.profile_path("A")
        with workers(settings, 1, profile) as w:
            result = drain(w, rx.count, events, 600, {"worker": w.pids(), "receiver": rx.pids()})
        out: dict[str, Any] = {
            "events": events,
            "subscriptions": len(workspaces),
            "receiver": rx.kind,
            "deliveries_per_s": round(result["rate"]),
            "seconds": result["seconds"],
            "raw_ceiling_per_s": round(ceiling["rate"]),
            "ratio": round(result["rate"] / ceiling["rate"], 3),
            "cpu_cores": result["cpu"],
            "worker_cpu_ms_per_delivery": result["worker_cpu_ms_per_delivery"],
            "per_second": result["per_second"],
            "raw_cpu_cores": ceiling["cpu"],
        }
        return _profiled(out, profile)
    finally:
        rx.close()


def _endpoint_limit(run: Run, ceiling: float) -> float:
    """min(500 endpoints x 20/s, the raw ceiling of this receiver, A's ceiling if measured)."""
    limits = [ENDPOINTS * PER_ENDPOINT_RATE, ceiling]
    if "A" in run.results:
        limits.append(run.results["A"]["raw_ceiling_per_s"])
    return min(limits)


def scenario_b(run: Run) -> dict[str, Any]:
    """500 ordered endpoints answering after 50 ms, vs the limit and vs the naive worker."""
    per = run.scaled(40, 4)
    total = ENDPOINTS * per
    rx = AiohttpReceiver(ENDPOINT_DELAY_MS)
    try:
        workspaces = [f"wb{i}" for i in range(ENDPOINTS)]
        urls = [rx.url(ws) for ws in workspaces]
        ceiling = raw_ceiling(urls, _bodies(workspaces, total), ENDPOINTS, rx)
        settings = make_settings(run.bootstrap, "b", 6)
        subscribe(settings, rx, workspaces)
        backlog(settings, workspaces, total)
        naive = run_naive(run, settings.input_topics, dict(zip(workspaces, urls, strict=True)))
        rx.reset()
        with workers(settings, 1, run.profile_path("B")) as w:
            result = drain(w, rx.count, total, 900, {"worker": w.pids(), "receiver": rx.pids()})
            starts = lane_starts(rx.first_arrivals())
        limit = _endpoint_limit(run, ceiling["rate"])
        out = {
            "events": total,
            "endpoints": ENDPOINTS,
            "deliveries_per_s": round(result["rate"]),
            "seconds": result["seconds"],
            "endpoint_limit_per_s": ENDPOINTS * PER_ENDPOINT_RATE,
            "raw_ceiling_per_s": round(ceiling["rate"]),
            "limit_per_s": round(limit),
            "ratio": round(result["rate"] / limit, 3),
            "naive_per_s": round(naive["rate"], 1),
            "naive_window_s": naive["seconds"],
            "vs_naive": round(result["rate"] / max(naive["rate"], 1e-9), 1),
            "cpu_cores": result["cpu"],
            "worker_cpu_ms_per_delivery": result["worker_cpu_ms_per_delivery"],
            "per_second": result["per_second"],
            "lane_start_s": starts,
            "raw_cpu_cores": ceiling["cpu"],
        }
        return _profiled(out, run.profile_path("B"))
    finally:
        rx.close()


def lane_starts(firsts: list[float]) -> dict[str, float]:
    """When the endpoints got their first delivery, in seconds after the first one: an
    ordered endpoint's 40 deliveries go one at a time, so late starters make the tail."""
    if not firsts:
        return {}
    ordered = sorted(t - min(firsts) for t in firsts)
    n = len(ordered)
    return {
        "p50": round(ordered[n // 2], 2),
        "p90": round(ordered[min(n - 1, n * 9 // 10)], 2),
        "last": round(ordered[-1], 2),
    }


def run_naive(run: Run, topic: str, urls: dict[str, str]) -> dict[str, Any]:
    """``bench/naive.py`` on the same backlog, in its own group, for a fixed window."""
    window = run.scaled(20, 5)
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        f.write(orjson.dumps(urls))
        f.flush()
        command = [sys.executable, "-m", "bench.naive", run.bootstrap, topic, "bench-naive"]
        out = subprocess.run(
            [*command, f.name, str(window)],
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=window + 120,
        )
    return dict(orjson.loads(out.stdout.splitlines()[-1]))


def scenario_c(run: Run) -> dict[str, Any]:
    """B with 10 % of the endpoints never answering (2 s timeout): the healthy ones' rate."""
    if "B" not in run.results:
        run.results["B"] = scenario_b(run)
    per = run.scaled(40, 4)
    rx = AiohttpReceiver(ENDPOINT_DELAY_MS)
    try:
        workspaces = [f"wc{i}" for i in range(ENDPOINTS)]
        hung = workspaces[::10]
        rx.hang(hung)
        settings = make_settings(run.bootstrap, "c", 6, default_timeout_ms=2000)
        subscribe(settings, rx, workspaces)
        backlog(settings, workspaces, ENDPOINTS * per)
        healthy = (ENDPOINTS - len(hung)) * per
        with workers(settings, 1, run.profile_path("C")) as w:
            result = drain(w, rx.count, healthy, 900, {"worker": w.pids(), "receiver": rx.pids()})
            attempts = attempt_outcomes(w)
        b_rate = run.results["B"]["deliveries_per_s"]
        out = {
            "events": ENDPOINTS * per,
            "hung_endpoints": len(hung),
            "timeout_s": settings.default_timeout_ms / 1000,
            "healthy_deliveries": healthy,
            "healthy_deliveries_per_s": round(result["rate"]),
            "seconds": result["seconds"],
            "b_deliveries_per_s": b_rate,
            "ratio": round(result["rate"] / b_rate, 3),
            "attempts_by_outcome": attempts,
            "cpu_cores": result["cpu"],
            "worker_cpu_ms_per_delivery": result["worker_cpu_ms_per_delivery"],
            "per_second": result["per_second"],
        }
        return _profiled(out, run.profile_path("C"))
    finally:
        rx.close()


def attempt_outcomes(running: Workers) -> dict[str, float]:
    """``webhook_attempts_total`` by outcome, summed over the worker processes."""
    totals: dict[str, float] = {}
    for port in running.ports:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        for line in text.splitlines():
            if line.startswith("webhook_attempts_total{"):
                labels, value = line.rsplit(" ", 1)
                outcome = labels.split('outcome="', 1)[1].split('"', 1)[0]
                totals[outcome] = totals.get(outcome, 0) + float(value)
    return totals


def scenario_d(run: Run) -> dict[str, Any]:
    """Latency at a steady 1,000 events/s (see ``latency.py``)."""
    return latency.scenario_d(run.bootstrap, max(5.0, 20 * run.scale))


def machine_limit(measured: dict[str, Any]) -> dict[str, Any]:
    """The most the workers could deliver on this machine: the cores that the broker and the
    receiver leave (with nothing else running), over what one delivery costs the workers."""
    cpu = measured["cpu_cores"]
    left = cpu["cores"] - cpu["broker"] - cpu["receiver"] - cpu.get("bench", 0)
    per = measured["worker_cpu_ms_per_delivery"] / 1000
    return {
        "cores_left_for_workers": round(left, 2),
        "deliveries_per_s": round(left / per) if per else None,
        "busy_cores_from_others": cpu["others"],
    }


def scenario_f(run: Run) -> dict[str, Any]:
    """Scenario B's load drained by one worker process, then by two in one group, each
    measured in its steady state (see ``drain``)."""
    per = run.scaled(40, 4)
    total = ENDPOINTS * per
    rx = AiohttpReceiver(ENDPOINT_DELAY_MS)
    out: dict[str, Any] = {
        "events": total,
        "partitions": 12,
        "window": f"{STEADY[0]:.0%} to {STEADY[1]:.0%} of the deliveries, all workers ready",
    }
    try:
        for n in (1, 2):
            workspaces = [f"wf{n}_{i}" for i in range(ENDPOINTS)]
            settings = make_settings(run.bootstrap, f"f{n}", 12)
            subscribe(settings, rx, workspaces)
            backlog(settings, workspaces, total)
            rx.reset()
            with workers(settings, n) as w:
                groups = {f"worker{i + 1}": [pid] for i, pid in enumerate(w.pids())}
                cpu_groups = {**groups, "receiver": rx.pids()}
                result = drain(w, rx.count, total, 900, cpu_groups, steady=True)
            out[f"{n}_process"] = {
                "deliveries_per_s": round(result["rate"]),
                "measured_deliveries": result["measured"],
                "seconds": result["seconds"],
                "cpu_cores": result["cpu"],
                "worker_cpu_ms_per_delivery": result["worker_cpu_ms_per_delivery"],
                "per_second": result["per_second"],
            }
        one, two = out["1_process"], out["2_process"]
        out["ratio"] = round(two["deliveries_per_s"] / one["deliveries_per_s"], 3)
        out["machine_limit"] = machine_limit(two)
        return out
    finally:
        rx.close()
