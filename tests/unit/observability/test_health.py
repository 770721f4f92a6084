"""The health server answers for real over HTTP on a free port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from worker.observability.health import HealthServer, LoopHeartbeat, PeriodicProbe
from worker.observability.metrics import Metrics

pytestmark = pytest.mark.timeout(10)


class Probe:
    """Switchable checks, so one server shows both answers."""

    def __init__(self) -> None:
        self.alive = True
        self.ready: bool | tuple[bool, str] = False

    def is_alive(self) -> bool:
        return self.alive

    def is_ready(self) -> bool | tuple[bool, str]:
        return self.ready


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
async def client(metrics: Metrics, probe: Probe) -> AsyncIterator[httpx.AsyncClient]:
    server = HealthServer(metrics, 0, "127.0.0.1", ready=probe.is_ready, alive=probe.is_alive)
    await server.start()
    try:
        assert server.port > 0
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            yield http
    finally:
        await server.stop()


async def test_metrics_endpoint(client: httpx.AsyncClient, metrics: Metrics) -> None:
    metrics.tasks_routed(5)
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    [sample] = [
        s for s in families["webhook_deliveries_routed"].samples if s.name.endswith("_total")
    ]
    assert sample.value == 5


async def test_healthz_follows_alive(client: httpx.AsyncClient, probe: Probe) -> None:
    response = await client.get("/healthz")
    assert (response.status_code, response.text) == (200, "ok\n")
    probe.alive = False
    response = await client.get("/healthz")
    assert response.status_code == 503


async def test_readyz_with_bool(client: httpx.AsyncClient, probe: Probe) -> None:
    response = await client.get("/readyz")
    assert (response.status_code, response.text) == (503, "not ready\n")
    probe.ready = True
    response = await client.get("/readyz")
    assert (response.status_code, response.text) == (200, "ready\n")


async def test_readyz_with_reason(client: httpx.AsyncClient, probe: Probe) -> None:
    probe.ready = (False, "subscription table catching up")
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.text == "not ready: subscription table catching up\n"
    probe.ready = (True, "ignored")
    assert (await client.get("/readyz")).status_code == 200


async def test_failing_checks_answer_503(
    metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> bool:
        raise RuntimeError("boom")

    server = HealthServer(metrics, 0, "127.0.0.1", ready=broken, alive=broken)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            ready = await http.get("/readyz")
            alive = await http.get("/healthz")
    finally:
        await server.stop()
    assert ready.status_code == 503
    assert ready.text == "not ready: check failed: RuntimeError\n"
    assert alive.status_code == 503
    assert "readiness check failed" in caplog.text


async def test_stop_releases_port_and_is_idempotent(metrics: Metrics) -> None:
    server = HealthServer(metrics, 0, "127.0.0.1", ready=lambda: True, alive=lambda: True)
    await server.stop()  # before start: nothing to do
    await server.start()
    port = server.port
    await server.stop()
    await server.stop()
    with socket.create_server(("127.0.0.1", port)):
        pass  # rebinding works: the listener is gone


async def test_port_before_start_raises(metrics: Metrics) -> None:
    server = HealthServer(metrics, 0, ready=lambda: True, alive=lambda: True)
    with pytest.raises(RuntimeError):
        _ = server.port


async def test_port_in_use_raises(metrics: Metrics) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        server = HealthServer(metrics, port, "127.0.0.1", ready=lambda: True, alive=lambda: True)
        with pytest.raises(OSError):
            await server.start()
        await server.stop()


def test_heartbeat_ages() -> None:
    now = [100.0]
    heartbeat = LoopHeartbeat(clock=lambda: now[0])
    assert heartbeat.alive()
    now[0] = 131.0
    assert not heartbeat.alive()
    assert heartbeat.alive(max_age_s=60)
    heartbeat.beat()
    assert heartbeat.alive()
    assert heartbeat.age() == 0


def test_heartbeat_with_real_clock() -> None:
    heartbeat = LoopHeartbeat()
    heartbeat.beat()
    assert heartbeat.alive(max_age_s=5)
    assert not heartbeat.alive(max_age_s=-1)


def test_periodic_probe_reports_failure_and_recovery():
    reachable = threading.Event()
    reachable.set()
    ran = threading.Semaphore(0)

    def probe() -> None:
        ran.release()
        if not reachable.is_set():
            raise ConnectionError("broker transport failure")

    checker = PeriodicProbe("broker", probe, interval_s=0.01)
    assert checker.check() == (True, "")  # before the first probe: the other checks decide
    checker.start()
    try:
        reachable.clear()
        deadline = time.monotonic() + 5
        while checker.check()[0]:
            assert time.monotonic() < deadline, "never noticed the failure"
            ran.acquire(timeout=1)
        assert checker.check() == (False, "broker: broker transport failure")
        reachable.set()
        while not checker.check()[0]:
            assert time.monotonic() < deadline, "never noticed the recovery"
            ran.acquire(timeout=1)
        assert checker.check() == (True, "")
    finally:
        checker.stop()
