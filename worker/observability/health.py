"""The worker's own HTTP port: ``/metrics``, ``/healthz`` and ``/readyz``.

Served by aiohttp on the caller's asyncio loop, next to the pipeline, so a blocked loop also
stops answering (which is what a liveness probe should notice).

- ``GET /metrics``: Prometheus text format from :meth:`Metrics.render`.
- ``GET /healthz``: 200 ``ok`` while ``alive()`` is true, else 503 ``stalled``.
- ``GET /readyz``: 200 ``ready`` when the readiness check passes, else 503 ``not ready`` with
  the check's reason appended (``not ready: subscription table catching up``).

A readiness check returns either a ``bool`` or a ``(ready, reason)`` pair; the reason is only
shown when not ready. A check that raises counts as failed, with the exception as its reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from aiohttp import web

from worker.observability.metrics import Metrics

__all__ = ["HealthServer", "LoopHeartbeat", "PeriodicProbe", "ReadyCheck"]

log = logging.getLogger(__name__)

ReadyCheck = Callable[[], bool | tuple[bool, str]]


class LoopHeartbeat:
    """Liveness from a loop's progress: the loop calls :meth:`beat` every iteration.

    Construction counts as the first beat, so a loop that never starts is reported dead once
    ``max_age_s`` has passed rather than alive forever.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last = clock()

    def beat(self) -> None:
        self._last = self._clock()

    def age(self) -> float:
        """Seconds since the last beat."""
        return self._clock() - self._last

    def alive(self, max_age_s: float = 30.0) -> bool:
        """True while the last beat is at most ``max_age_s`` old."""
        return self.age() <= max_age_s


class PeriodicProbe:
    """Runs a blocking ``probe`` (it raises when the dependency is unreachable) every
    ``interval_s`` on a daemon thread; :meth:`check` reports the last outcome as a readiness
    check. Until the first probe has finished it reports success, so start-up readiness is
    decided by the other checks alone.

    A thread, not the event loop: a probe of an unreachable peer blocks for its own timeout,
    and neither the pipeline nor ``/readyz`` may wait for that.
    """

    def __init__(self, name: str, probe: Callable[[], object], interval_s: float = 2.0) -> None:
        self._name = name
        self._probe = probe
        self._interval_s = interval_s
        self._failure: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"probe-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop probing; does not wait for a probe that is still blocked on its timeout."""
        self._stop.set()

    def check(self) -> tuple[bool, str]:
        failure = self._failure
        return failure is None, f"{self._name}: {failure}" if failure else ""

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._probe()
            except Exception as exc:
                if self._failure is None:
                    log.warning("%s: %s", self._name, exc)
                self._failure = str(exc) or type(exc).__name__
            else:
                if self._failure is not None:
                    log.info("%s: reachable again", self._name)
                self._failure = None
            self._stop.wait(self._interval_s)


class HealthServer:
    """Serves metrics and probes until :meth:`stop`. ``port=0`` binds a free port; read the
    bound one from :attr:`port` after :meth:`start`."""

    def __init__(
        self,
        metrics: Metrics,
        port: int,
        host: str = "0.0.0.0",
        *,
        ready: ReadyCheck,
        alive: Callable[[], bool],
    ) -> None:
        self._metrics = metrics
        self._host = host
        self._requested_port = port
        self._ready = ready
        self._alive = alive
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The port actually bound (differs from the requested one when that was 0)."""
        if self._port is None:
            raise RuntimeError("HealthServer is not started")
        return self._port

    async def start(self) -> None:
        """Bind and start serving; raises ``OSError`` when the port is taken."""
        if self._runner is not None:
            raise RuntimeError("HealthServer already started")
        app = web.Application()
        app.router.add_get("/metrics", self._handle_metrics)
        app.router.add_get("/healthz", self._handle_healthz)
        app.router.add_get("/readyz", self._handle_readyz)
        # No access log: Prometheus and the kubelet would fill it with scrapes and probes.
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = _bound_port(runner, self._requested_port)
        log.info("serving /metrics, /healthz, /readyz on %s:%d", self._host, self._port)

    async def stop(self) -> None:
        """Stop serving; safe to call twice or before :meth:`start`."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _handle_metrics(self, _request: web.Request) -> web.Response:
        body, content_type = self._metrics.render()
        # aiohttp refuses a charset inside content_type; pass the full header instead.
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _handle_healthz(self, _request: web.Request) -> web.Response:
        try:
            alive = self._alive()
        except Exception:
            log.exception("liveness check failed")
            alive = False
        if alive:
            return web.Response(text="ok\n")
        return web.Response(status=503, text="stalled\n")

    async def _handle_readyz(self, _request: web.Request) -> web.Response:
        ready, reason = self._check_ready()
        if ready:
            return web.Response(text="ready\n")
        text = f"not ready: {reason}\n" if reason else "not ready\n"
        return web.Response(status=503, text=text)

    def _check_ready(self) -> tuple[bool, str]:
        try:
            result = self._ready()
        except Exception as exc:
            log.exception("readiness check failed")
            return False, f"check failed: {type(exc).__name__}"
        if isinstance(result, tuple):
            ready, reason = result
            return bool(ready), reason
        return bool(result), ""


def _bound_port(runner: web.AppRunner, requested: int) -> int:
    for address in runner.addresses:
        # IPv4 gives (host, port), IPv6 (host, port, flowinfo, scope_id).
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return requested
