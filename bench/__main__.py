"""``python -m bench``: the benchmark. Starts the dev broker, a receiver process and the worker
(as a subprocess), drains a backlog per scenario, prints a table and writes bench/results.json.

Scenarios (issue 5): A CPU efficiency vs the raw aiohttp ceiling; B 500 ordered endpoints
answering after 50 ms; E subscription-table scale (load time, memory, routing rate).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson

from worker.config import Settings, parse_retry_delays
from worker.kafka.admin import ensure_topics
from worker.kafka.clients import make_admin, make_producer
from worker.kafka.devbroker import DevBroker
from worker.kafka.topics import Topics
from worker.kafka.writes import produce

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.table import scenario_e  # noqa: E402
from tests.support.subs import SubsWriter  # noqa: E402
from tests.support.worker import settings_env  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Rig:
    """Broker + receiver process shared by the scenarios."""

    def __init__(self, broker: DevBroker, delay_ms: int) -> None:
        self.broker = broker
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "receiver.py"), str(self.port), str(delay_ms)]
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(self.url("_stats"), timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "receiver did not start"
                time.sleep(0.1)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def count(self) -> int:
        return int(httpx.get(self.url("_stats"), timeout=5).json()["count"])

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(self.url("_stats"), timeout=30).json())

    def reset(self) -> None:
        httpx.post(self.url("_reset"), timeout=5)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def make_settings(bootstrap: str, name: str, partitions: int) -> Settings:
    settings = Settings.from_env(
        {},
        bootstrap_servers=bootstrap,
        topic_prefix=f"bench.{name}.",
        input_topics=f"bench.{name}.events",
        group_id=f"bench-{name}",
        metrics_port=0,
        allow_http=True,
        allow_private_networks=True,
        retry_delays_ms=parse_retry_delays("1s,5s"),
        max_in_flight=1024,
        max_in_flight_per_workspace=0,
    )
    ensure_topics(
        make_admin(settings),
        Topics.from_settings(settings),
        partitions=partitions,
        replication_factor=1,
        input_topics=settings.input_topic_list(),
    )
    return settings


def backlog(settings: Settings, workspaces: list[str], count: int) -> None:
    producer = make_producer(settings)
    topic = settings.input_topics
    for i in range(count):
        ws = workspaces[i % len(workspaces)]
        data = {
            "id": f"e{i}",
            "event": "contact.updated",
            "workspace": ws,
            "record": {"id": str(i), "name": "Jane Smith", "stage": "proposal"},
            "sent": 0,
        }
        produce(producer, topic, orjson.dumps(data), ws.encode())
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0


def drain(settings: Settings, rig: Rig, expected: int, timeout: float, workers: int = 1) -> float:
    """Start ``workers`` worker processes; seconds from the first delivery to the last."""
    procs = []
    for _ in range(workers):
        env = settings_env(settings)
        env["WEBHOOK_METRICS_PORT"] = str(free_port())
        env["WEBHOOK_MAX_IN_FLIGHT_PER_WORKSPACE"] = "0"
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "worker", "run"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    try:
        deadline = time.monotonic() + timeout
        first = None
        while True:
            n = rig.count()
            now = time.monotonic()
            if first is None and n > 0:
                first = now
            if n >= expected:
                return now - (first or now)
            if now > deadline:
                raise TimeoutError(f"only {n} of {expected} deliveries in {timeout}s")
            time.sleep(0.05)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(60)


async def raw_ceiling(url: str, count: int, concurrency: int = 256) -> float:
    body = orjson.dumps(
        {
            "id": "e",
            "event": "contact.updated",
            "workspace": "w",
            "record": {"id": "1", "name": "Jane Smith", "stage": "proposal"},
        }
    )
    sem = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:

        async def one() -> None:
            async with sem, s.post(url, data=body) as resp:
                await resp.read()

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return count / (time.perf_counter() - start)


def scenario_a(broker: DevBroker, events: int) -> dict[str, Any]:
    rig = Rig(broker, 0)
    try:
        ceiling = asyncio.run(raw_ceiling(rig.url("raw"), events))
        rig.reset()
        settings = make_settings(broker.bootstrap, "a", 6)
        writer = SubsWriter(settings)
        workspaces = [f"ws{i}" for i in range(100)]
        for ws in workspaces:
            writer.create(ws, rig.url(ws), ["*"])
        backlog(settings, workspaces, events)
        seconds = drain(settings, rig, events, timeout=600)
        rate = events / seconds
        return {
            "deliveries_per_s": round(rate),
            "raw_ceiling_per_s": round(ceiling),
            "ratio": round(rate / ceiling, 3),
            "target": ">= 0.50",
        }
    finally:
        rig.close()


def scenario_b(broker: DevBroker, endpoints: int, per_endpoint: int) -> dict[str, Any]:
    rig = Rig(broker, 50)
    try:
        settings = make_settings(broker.bootstrap, "b", 6)
        writer = SubsWriter(settings)
        workspaces = [f"wb{i}" for i in range(endpoints)]
        for ws in workspaces:
            writer.create(ws, rig.url(ws), ["*"])
        total = endpoints * per_endpoint
        backlog(settings, workspaces, total)
        seconds = drain(settings, rig, total, timeout=900)
        rate = total / seconds
        limit = endpoints * 20
        return {
            "deliveries_per_s": round(rate),
            "limit_per_s": limit,
            "ratio": round(rate / limit, 3),
            "target": ">= 0.80",
        }
    finally:
        rig.close()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--scenarios", default="A,B,E")
    parser.add_argument("--events", type=int, default=50_000)
    args = parser.parse_args()
    chosen = {s.strip().upper() for s in args.scenarios.split(",")}
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "scenarios": {},
    }
    with DevBroker() as broker:
        if "A" in chosen:
            results["scenarios"]["A"] = scenario_a(broker, args.events)
            print("A", results["scenarios"]["A"], flush=True)
        if "B" in chosen:
            results["scenarios"]["B"] = scenario_b(broker, 500, 40)
            print("B", results["scenarios"]["B"], flush=True)
    if "E" in chosen:
        results["scenarios"]["E"] = scenario_e(100_000, 10_000)
        print("E", results["scenarios"]["E"], flush=True)
    (ROOT / "bench" / "results.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print(f"{'scenario':<9} result")
    for name, value in results["scenarios"].items():
        print(f"{name:<9} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
