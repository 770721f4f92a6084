"""Running the real worker from tests: in a thread (fast, same process) or as a
subprocess (for kill -9 and SIGTERM). Both use the real broker and real HTTP."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from worker.app import run_worker
from worker.config import Settings, format_duration

REPO = Path(__file__).resolve().parents[2]


class ThreadWorker:
    """``run_worker`` on its own event loop in a background thread (subclasses serve another
    long-running command the same way: :meth:`_serve`)."""

    def __init__(self, settings: Settings, role: str = "all") -> None:
        self.settings = settings
        self.role = role
        self.port = 0
        self.error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def go() -> None:
            self._stop = asyncio.Event()

            def started(port: int) -> None:
                self.port = port
                self._started.set()

            await self._serve(self._stop, started)

        try:
            self._loop.run_until_complete(go())
        except BaseException as exc:  # surfaced by stop()
            self.error = exc
        finally:
            self._started.set()
            self._loop.close()

    async def _serve(self, stop: asyncio.Event, started: Callable[[int], None]) -> None:
        await run_worker(self.settings, self.role, stop=stop, on_started=started)

    def start(self, timeout: float = 30) -> ThreadWorker:
        self._thread.start()
        assert self._started.wait(timeout), "worker did not start"
        if self.error:
            raise self.error
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        wait_ready(self.port, timeout, lambda: self.error)

    def stop(self, timeout: float = 60) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "worker did not stop"
        if self.error:
            raise self.error


@contextmanager
def running(settings: Settings, role: str = "all") -> Iterator[ThreadWorker]:
    worker = ThreadWorker(settings, role).start()
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.stop()


def wait_ready(port: int, timeout: float, error: object = lambda: None) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if callable(error) and error():
            raise AssertionError(f"worker failed: {error()!r}")
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            if response.status_code == 200:
                return
            last = response.text
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise AssertionError(f"worker not ready within {timeout}s: {last}")


def metric(port: int, name: str) -> float:
    """The value of an unlabelled series on a worker's ``/metrics``; fails if it is missing."""
    return metric_in(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text, name)


def metric_in(text: str, name: str) -> float:
    """The value of an unlabelled series in a scrape's text; fails if it is missing."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} is not exported"
    return float(match.group(1))


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a subprocess build the same settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEBHOOK_", "KAFKA_"))}
    assert settings.bootstrap_servers
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=settings.bootstrap_servers,
        WEBHOOK_INPUT_TOPICS=settings.input_topics,
        WEBHOOK_TOPIC_PREFIX=settings.topic_prefix,
        WEBHOOK_GROUP_ID=settings.group_id,
        WEBHOOK_METRICS_PORT=str(settings.metrics_port),
        WEBHOOK_RETRY_DELAYS=",".join(format_duration(d) for d in settings.retry_delays_ms),
        WEBHOOK_ALLOW_HTTP=str(settings.allow_http).lower(),
        WEBHOOK_ALLOW_PRIVATE_NETWORKS=str(settings.allow_private_networks).lower(),
        WEBHOOK_SHUTDOWN_TIMEOUT=f"{settings.shutdown_timeout_ms}ms",
        WEBHOOK_MAX_IN_FLIGHT=str(settings.max_in_flight),
        WEBHOOK_CHALLENGE_CACHE=settings.challenge_cache,
        WEBHOOK_DISABLE_AFTER_FAILURES=str(settings.disable_after_failures),
        WEBHOOK_MAX_ENDPOINTS_PER_WORKSPACE=str(settings.max_endpoints_per_workspace),
        WEBHOOK_DEDUPE_WINDOW=f"{settings.dedupe_window_ms}ms",
        WEBHOOK_EVENT_LOOP=settings.event_loop,
        WEBHOOK_READ_AHEAD_MB=str(max(1, settings.read_ahead_bytes // (1024 * 1024))),
    )
    for key, value in settings.kafka_properties.items():
        env["KAFKA_" + key.upper().replace(".", "_")] = value
    if settings.secrets_key:
        env["WEBHOOK_SECRETS_KEY"] = settings.secrets_key
    if settings.event_types:
        env["WEBHOOK_EVENT_TYPES"] = settings.event_types
    if settings.ca_bundle:
        env["WEBHOOK_CA_BUNDLE"] = settings.ca_bundle
    return env


class ProcessWorker:
    """``python -m worker run`` as a child process."""

    def __init__(self, settings: Settings, port: int, role: str = "all") -> None:
        env = settings_env(settings)
        env["WEBHOOK_METRICS_PORT"] = str(port)
        self.port = port
        # A file, not a pipe: a chatty worker must never block on a full pipe.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "worker", "run", "--role", role],
            env=env,
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 40) -> None:
        wait_ready(self.port, timeout, lambda: self.proc.poll() is not None and self._err())

    def _err(self) -> str:
        return self.output()[-2000:]

    def output(self) -> str:
        """Everything the worker wrote to stdout and stderr so far."""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 60) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        self._log.close()
