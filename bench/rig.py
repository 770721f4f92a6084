"""What the scenarios share: topics and subscriptions on the dev broker, the event backlog, the
worker as real ``python -m worker run`` processes, draining, and the raw HTTP ceiling."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson

from bench.procstat import CpuMeter, broker_pid
from bench.receivers import Receiver, free_port
from tests.support.subs import SubsWriter
from tests.support.topics import create_topics
from tests.support.worker import settings_env, wait_ready
from worker import eventloop
from worker.config import Settings, format_duration, parse_retry_delays
from worker.kafka.clients import make_producer
from worker.kafka.writes import produce

ROOT = Path(__file__).resolve().parents[1]


def make_settings(bootstrap: str, name: str, partitions: int, **overrides: Any) -> Settings:
    """Settings for one scenario, with its own topics (``bench.<name>.*``) created."""
    values: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "topic_prefix": f"bench.{name}.",
        "input_topics": f"bench.{name}.events",
        "group_id": f"bench-{name}",
        "metrics_port": 0,
        "allow_http": True,
        "allow_private_networks": True,
        "retry_delays_ms": parse_retry_delays("1s,5s"),
        "max_in_flight": 1024,
        "max_in_flight_per_workspace": 0,
    }
    values.update(overrides)
    settings = Settings.from_env({}, **values)
    create_topics(settings, partitions)
    return settings


def subscribe(settings: Settings, receiver: Receiver, workspaces: list[str]) -> None:
    """One ordered subscription per workspace, to ``receiver``'s URL named after it, with the
    settings' default timeout (the dispatcher uses each subscription's own timeout)."""
    writer = SubsWriter(settings)
    for ws in workspaces:
        writer.create(ws, receiver.url(ws), ["*"], timeout_ms=settings.default_timeout_ms)


def event(i: int, workspace: str, sent: float = 0.0) -> dict[str, Any]:
    """The benchmark's event; the worker delivers it as is (no field selection)."""
    return {
        "id": f"e{i}",
        "event": "contact.updated",
        "workspace": workspace,
        "record": {"id": str(i), "name": "Jane Smith", "stage": "proposal"},
        "changes": {"stage": {"old": "qualification", "new": "proposal"}},
        "sent": sent,
    }


def backlog(settings: Settings, workspaces: list[str], count: int) -> None:
    """``count`` events round-robin over the workspaces, keyed by workspace, all acknowledged."""
    producer = make_producer(settings)
    topic = settings.input_topics
    for i in range(count):
        ws = workspaces[i % len(workspaces)]
        produce(producer, topic, orjson.dumps(event(i, ws)), ws.encode())
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0


def worker_env(settings: Settings) -> dict[str, str]:
    env = settings_env(settings)
    env["WEBHOOK_METRICS_PORT"] = str(free_port())
    env["WEBHOOK_MAX_IN_FLIGHT_PER_WORKSPACE"] = str(settings.max_in_flight_per_workspace)
    env["WEBHOOK_DEFAULT_TIMEOUT"] = format_duration(settings.default_timeout_ms)
    env["WEBHOOK_EVENT_LOOP"] = event_loop()
    env["WEBHOOK_READ_AHEAD_MB"] = str(max(1, settings.read_ahead_bytes // (1024 * 1024)))
    return env


def event_loop() -> str:
    """The event loop the benchmark runs the worker and the raw ceiling on (``--loop``)."""
    return os.environ.get("WEBHOOK_EVENT_LOOP") or "uvloop"


def split_roles() -> bool:
    """``--roles split``: run one worker as a router process and a dispatcher process."""
    return os.environ.get("BENCH_WORKER_ROLES") == "split"


class Workers:
    """``n`` worker processes in one group; optionally one of them sampled by py-spy."""

    def __init__(
        self,
        settings: Settings,
        n: int = 1,
        profile: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        self._logs = []
        # --roles split: one worker is a router process and a dispatcher process (the Kubernetes
        # layout); the profile samples the dispatcher.
        roles = ["dispatcher", "router"] if n == 1 and split_roles() else ["all"] * n
        for role in roles:
            env = {**worker_env(settings), **(extra_env or {})}
            log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
            self._logs.append(log)
            self.ports.append(int(env["WEBHOOK_METRICS_PORT"]))
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "worker", "run", "--role", role],
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        self.profiler: subprocess.Popen[bytes] | None = None
        if profile is not None:
            self.profiler = spy(self.procs[0].pid, profile)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def check(self) -> None:
        for proc, log in zip(self.procs, self._logs, strict=True):
            if proc.poll() is not None:
                log.seek(0)
                tail = log.read().decode("utf-8", "replace")[-2000:]
                raise RuntimeError(f"worker exited with {proc.returncode}: {tail}")

    def ready(self) -> bool:
        """Every worker answers ``/readyz`` with 200."""
        for port in self.ports:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code != 200:
                    return False
            except httpx.HTTPError:
                return False
        return True

    def wait_ready(self, timeout: float = 60) -> None:
        for port in self.ports:
            wait_ready(port, timeout)

    def stop(self) -> None:
        if self.profiler is not None:
            self.profiler.send_signal(signal.SIGINT)
            self.profiler.wait(60)
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in self._logs:
            log.close()


def spy(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling ``pid`` at 100 Hz into collapsed stacks. It pauses the process for each
    sample: ``--nonblocking`` costs less but mixes frames of different moments."""
    binary = Path(sys.executable).parent / "py-spy"
    if not binary.exists():
        raise RuntimeError(f"--profile needs py-spy: {sys.executable} -m pip install py-spy")
    command = [str(binary), "record", "--pid", str(pid), "--format", "raw"]
    command += ["--rate", "100", "--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextmanager
def workers(
    settings: Settings,
    n: int = 1,
    profile: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Workers]:
    running = Workers(settings, n, profile, extra_env)
    try:
        yield running
    finally:
        running.stop()


STEADY = (0.2, 0.9)  # the share of the deliveries that bounds a steady-state window


def drain(
    running: Workers,
    count: Callable[[], int],
    expected: int,
    timeout: float,
    cpu_groups: dict[str, list[int]],
    steady: bool = False,
) -> dict[str, Any]:
    """Wait for ``expected`` deliveries; rate and CPU from the first delivery to the last.

    ``steady``: measure only from STEADY[0] to STEADY[1] of the deliveries, and not before
    every worker is ready: start-up (group joins, the router's first catch-up) and the tail
    then count for no one, which is what comparing one process with two needs.
    """
    deadline = time.monotonic() + timeout
    low, high = (
        (round(STEADY[0] * expected), round(STEADY[1] * expected)) if steady else (1, expected)
    )
    first: float | None = None
    base = 0
    meter = CpuMeter({**cpu_groups, "broker": _broker_pids()})
    timeline: list[int] = []  # deliveries in each second of the window (stalls show here)
    while True:
        n = count()
        now = time.monotonic()
        if first is None and n >= low and (not steady or running.ready()):
            first, base = now, n
            meter.start()
        if first is not None and now - first >= len(timeline) + 1:
            timeline.append(n - base - sum(timeline))
        if first is not None and n >= high:
            seconds = max(now - first, 1e-3)
            measured = n - base
            cpu = meter.stop()
            workers_cores = sum(
                v for k, v in cpu.items() if k in cpu_groups and k.startswith("worker")
            )
            return {
                "seconds": round(seconds, 2),
                "rate": measured / seconds,
                "measured": measured,
                "cpu": cpu,
                "per_second": timeline,
                # Noise-proof: what one delivery costs the worker, whatever else ran.
                "worker_cpu_ms_per_delivery": round(1000 * workers_cores * seconds / measured, 3),
            }
        if now > deadline:
            raise TimeoutError(f"only {n} of {expected} deliveries in {timeout:.0f}s")
        running.check()
        time.sleep(0.05)


def _broker_pids() -> list[int]:
    pid = broker_pid()
    return [pid] if pid else []


def raw_ceiling(
    urls: list[str], bodies: list[bytes], concurrency: int, receiver: Receiver
) -> dict[str, Any]:
    """Plain aiohttp POSTing ``bodies`` (round-robin over ``urls``), no Kafka, from this one
    process: the most a single Python process can deliver to this receiver on this machine."""
    meter = CpuMeter({"client": [os.getpid()], "receiver": receiver.pids()})
    meter.start()
    # The same event loop as the worker's: the ceiling is what this loop and aiohttp can do.
    seconds = eventloop.run(_post_all(urls, bodies, concurrency), event_loop())
    cpu = meter.stop()
    return {"rate": len(bodies) / seconds, "concurrency": concurrency, "cpu": cpu}


async def _post_all(urls: list[str], bodies: list[bytes], concurrency: int) -> float:
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0)
    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = iter(enumerate(bodies))

        async def lane() -> None:
            for i, body in queue:
                async with session.post(urls[i % len(urls)], data=body, headers=headers) as r:
                    await r.read()
                    assert r.status == 200, r.status

        start = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        return time.perf_counter() - start
