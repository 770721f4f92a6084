"""``python -m bench.api.scenario [--scale 1.0]``: the management API at scale (issue 13).

On its own dev broker: produces 1,000,000 attempts (scenario L's producer, 2,000
subscriptions), starts ``webhook-worker api`` as its own process on an empty data directory
and measures

- catch-up: attempts indexed per second until ``/readyz`` answers 200 (target >= 20,000/s);
- ``GET .../attempts`` of one subscription (first page of 50), 50 concurrent connections
  from Debian's ``wrk`` for 15 s, p50 and p99 (target p99 <= 50 ms);
- create without challenge (admin token, ``skip_challenge``), one client, p99 over 200
  (target <= 100 ms) — each create waits for the broker's acknowledgement;
- the API process's RSS at the end (target <= 300 MB), with MALLOC_ARENA_MAX=2 as the
  image sets it.

The subscriptions whose attempts are read exist in the table (written by the product's own
writer) so the route runs its full path: token, workspace, subscription, index.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.broker import local_broker
from bench.logindex import produce_attempts, subscription_ids
from bench.procstat import rss_mb
from bench.receivers import free_port
from bench.rig import make_settings, worker_env
from worker.codec.avro import AvroCodec
from worker.components import Codecs, secret_box
from worker.config import Settings
from worker.kafka.clients import make_producer
from worker.subscriptions.model import SecretEntry, Status, Subscription
from worker.subscriptions.store import SubscriptionWriter
from worker.tokens.registry import open_registry
from worker.tokens.writer import TokenWriter

REPO = Path(__file__).resolve().parents[2]
SUBSCRIPTIONS = 2_000
READ_SECONDS = 15
CLIENTS = 50
CREATES = 200


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def _write_subscriptions(settings: Settings, ids: list[str]) -> None:
    producer = make_producer(settings)
    writer = SubscriptionWriter(settings, producer, Codecs.load().records, secret_box(settings))
    for sub_id in ids:
        writer.put_nowait(
            Subscription(
                id=sub_id,
                workspace="ws0",
                url="https://example.com/hook",
                events=("*",),
                secrets=(SecretEntry("whsec_" + "A" * 32),),
                status=Status.ACTIVE,
                created_ms=1,
                updated_ms=1,
            )
        )
    assert producer.flush(60) == 0, "the subscriptions were not all acknowledged"


def _tokens(settings: Settings) -> tuple[str, str]:
    avro = AvroCodec()
    registry = open_registry(settings, avro)
    try:
        writer = TokenWriter(settings, make_producer(settings), avro, registry)
        workspace = writer.create(workspace="ws0", admin=False, name="bench")[1]
        admin = writer.create(workspace=None, admin=True, name="bench-admin")[1]
        return workspace, admin
    finally:
        registry.stop()


WRK_SCRIPT = """
local ids = {%s}
local n = 0
request = function()
  n = n + 1
  local sub = ids[(n * 7919) %% #ids + 1]
  return wrk.format("GET", "/v1/workspaces/ws0/subscriptions/" .. sub .. "/attempts")
end
"""


def _reads(url: str, token: str, ids: list[str], seconds: int) -> dict[str, float]:
    """GET attempts of rotating subscriptions from 50 connections with wrk (Debian's, in C:
    a Python load generator on the same two cores measured mostly itself)."""
    if shutil.which("wrk") is None:
        raise SystemExit("bench.api.scenario needs Debian's wrk: apt-get install wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % ", ".join(f'"{i}"' for i in ids))
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{CLIENTS}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                script.name,
                "-H",
                f"Authorization: Bearer {token}",
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    result: dict[str, float] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "99%"):
            result[f"read_p{parts[0][:-1]}_ms"] = _ms(parts[1])
        if line.startswith("Requests/sec:"):
            result["read_requests_per_s"] = round(float(parts[1]))
        if "Non-2xx" in line:
            raise AssertionError(f"the API answered errors: {line}")
    return result


def _ms(text: str) -> float:
    for unit, factor in (("ms", 1.0), ("us", 0.001), ("s", 1000.0)):
        if text.endswith(unit):
            return round(float(text[: -len(unit)]) * factor, 2)
    raise ValueError(text)


def _rss_parts(pid: int) -> dict[str, float]:
    """Anonymous (heap, caches) and file-backed resident memory, in MB."""
    parts = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("RssAnon", "RssFile"):
            parts[f"api_{name[3:].lower()}_mb"] = round(int(value.split()[0]) / 1024, 1)
    return parts


def _creates(url: str, token: str) -> list[float]:
    latencies = []
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}) as client:
        for i in range(CREATES):
            start = time.perf_counter()
            r = client.post(
                "/v1/workspaces/bench-create/subscriptions",
                json={
                    "url": f"https://example.com/h{i}",
                    "events": ["*"],
                    "skip_challenge": True,
                },
            )
            latencies.append(time.perf_counter() - start)
            assert r.status_code == 201, r.text
    return latencies


def run(scale: float) -> dict[str, Any]:
    attempts = int(1_000_000 * scale)
    with local_broker() as broker, tempfile.TemporaryDirectory(prefix="bench-api-") as data:
        settings = make_settings(broker.bootstrap, "api", 6)
        ids = subscription_ids(SUBSCRIPTIONS)
        produce_s = produce_attempts(settings, attempts, SUBSCRIPTIONS)
        _write_subscriptions(settings, ids)
        workspace_token, admin_token = _tokens(settings)
        port = free_port()
        env = worker_env(settings)
        env.update(WEBHOOK_API_PORT=str(port), WEBHOOK_API_DATA_DIR=data)
        env["WEBHOOK_API_RATE_LIMIT"] = "0"
        env.setdefault("MALLOC_ARENA_MAX", "2")  # as the image runs it (Dockerfile)
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker", "api", "--host", "127.0.0.1"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            start = time.perf_counter()
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None, "the API exited"
                time.sleep(0.1)
            catch_up_s = time.perf_counter() - start
            reads = _reads(url, workspace_token, ids, READ_SECONDS)
            creates = _creates(url, admin_token)
            rss = rss_mb(proc.pid)
            parts = _rss_parts(proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
    return {
        "attempts": attempts,
        "produce_s": round(produce_s, 1),
        "catch_up_s": round(catch_up_s, 1),
        "catch_up_per_s": round(attempts / catch_up_s),
        **reads,
        "create_p50_ms": round(statistics.median(creates) * 1000, 1),
        "create_p99_ms": round(_percentile(creates, 0.99) * 1000, 1),
        "api_rss_mb": round(rss, 1),
        **parts,
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api.scenario")
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    result = run(args.scale)
    targets = {
        "catch_up_per_s": (">=", 20_000),
        "read_p99_ms": ("<=", 50),
        "create_p99_ms": ("<=", 100),
        "api_rss_mb": ("<=", 300),
    }
    for key, value in result.items():
        target = targets.get(key)
        verdict = ""
        if target:
            ok = value >= target[1] if target[0] == ">=" else value <= target[1]
            verdict = f"  (target {target[0]} {target[1]}: {'PASS' if ok else 'MISS'})"
        print(f"{key:16} {value}{verdict}")


if __name__ == "__main__":
    main()
