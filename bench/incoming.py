"""``python -m bench.incoming [--rate 2000] [--seconds 20]``: sustained verified intake.

Starts the dev broker and one ``python -m worker api`` process, creates a
``standard-webhooks`` source, and sends pre-signed requests (each with its own webhook-id,
so every one is claimed, written and marked landed) at a fixed rate from an aiohttp client
in this process. A request counts when it was answered 200, which the API does only after
the broker acknowledged its record. Afterwards the topic is read back: every 200 must be a
record. Prints and writes ``bench/incoming-results.json``: the achieved rate, latency
percentiles (from send to answer), errors, and the cores used by the API, the broker, this
load generator and everything else on the machine (a shared machine: see ``others``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.broker import local_broker
from bench.procstat import CpuMeter, broker_pid
from bench.receivers import free_port
from bench.rig import ROOT, make_settings
from tests.support.incoming import landed
from tests.support.worker import settings_env, wait_ready
from worker import eventloop
from worker.config import Settings

HERE = Path(__file__).resolve().parent
BODY = orjson.dumps(
    {
        "type": "invoice.paid",
        "data": {"id": "in_1", "amount": 1200, "currency": "eur", "customer": "cus_42"},
    }
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.incoming", description=__doc__)
    parser.add_argument("--rate", type=float, default=2000.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured duration")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--output", type=Path, default=HERE / "incoming-results.json")
    return parser.parse_args(argv)


def signed(secret: str, count: int) -> list[dict[str, str]]:
    """``count`` Standard Webhooks header sets, signed now (valid for 5 minutes)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    now = int(time.time())
    out = []
    for _ in range(count):
        webhook_id = f"msg_{uuid.uuid4().hex}"
        digest = hmac.digest(key, f"{webhook_id}.{now}.".encode() + BODY, hashlib.sha256)
        out.append(
            {
                "webhook-id": webhook_id,
                "webhook-timestamp": str(now),
                "webhook-signature": "v1," + base64.b64encode(digest).decode(),
                "content-type": "application/json",
            }
        )
    return out


async def load(
    url: str, requests: list[dict[str, str]], rate: float, connections: int
) -> tuple[list[float], dict[str, int], float]:
    """Send every request at ``rate`` (open loop, at most ``connections`` in flight);
    latencies of the 200s, counts by status, and the wall time."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    gate = asyncio.Semaphore(connections)
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(headers: dict[str, str]) -> None:
            async with gate:
                started = time.perf_counter()
                try:
                    async with session.post(url, data=BODY, headers=headers) as response:
                        await response.read()
                        status = str(response.status)
                except aiohttp.ClientError as exc:
                    status = type(exc).__name__
                if status == "200":
                    latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1

        tasks = []
        start = time.perf_counter()
        for i, headers in enumerate(requests):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(headers)))
        await asyncio.gather(*tasks)
        return latencies, statuses, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def create_source(settings: Settings, topic: str) -> dict[str, Any]:
    env = settings_env(settings)
    result = subprocess.run(
        [sys.executable, "-m", "worker", "sources", "create", "--workspace", "bench",
         "--name", "bench", "--topic", topic, "--output", "json"],
        env=env, cwd=ROOT, capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    document: dict[str, Any] = orjson.loads(result.stdout)
    return document


def run(args: argparse.Namespace) -> dict[str, Any]:
    with local_broker() as broker:
        settings = make_settings(broker.bootstrap, "incoming", 1)
        topic = "bench-incoming"
        source = create_source(settings, topic)
        port = free_port()
        env = settings_env(settings)
        env.update(
            WEBHOOK_API_PORT=str(port),
            WEBHOOK_API_DATA_DIR=tempfile.mkdtemp(prefix="bench-api-"),
            WEBHOOK_INCOMING_RATE_LIMIT="0",
        )
        log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
        api = subprocess.Popen(
            [sys.executable, "-m", "worker", "api", "--host", "127.0.0.1"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_ready(port, 60, lambda: api.poll() is not None)
            url = f"http://127.0.0.1:{port}{source['path']}"
            warm = signed(source["secret"], int(args.rate * args.warmup))
            measured = signed(source["secret"], int(args.rate * args.seconds))
            eventloop.run(load(url, warm, args.rate, args.connections))
            groups = {"api": [api.pid], "broker": [p for p in [broker_pid()] if p]}
            meter = CpuMeter(groups)
            meter.start()
            latencies, statuses, wall = eventloop.run(
                load(url, measured, args.rate, args.connections)
            )
            cpu = meter.stop()
            records = len(landed(broker.bootstrap, topic))
        finally:
            api.terminate()
            api.wait(30)
            log.close()
    answered = statuses.get("200", 0)
    return {
        "target": {"rate": args.rate, "p99_ms": 50},
        "requests": len(measured),
        "answered_200": answered,
        "statuses": statuses,
        "rate_achieved": round(answered / wall, 1),
        "latency_ms": {
            name: round(percentile(latencies, q) * 1000, 2)
            for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
        },
        "records_in_topic": records,
        "records_expected": int(args.rate * args.warmup) + answered,
        "cpu_cores": cpu,
        "seconds": round(wall, 2),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    args.output.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
