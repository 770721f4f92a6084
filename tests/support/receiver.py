"""Real webhook receivers for tests: an aiohttp server on 127.0.0.1 in its own thread.

Every request is verified with the ``standardwebhooks`` package (what receivers use) and
recorded; each endpoint's behaviour decides the reply (status, delay, hang, reset).
"""

from __future__ import annotations

import asyncio
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Reply:
    """How an endpoint answers: ``hang`` never answers, ``reset`` drops the connection."""

    status: int = 200
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    hang: bool = False
    reset: bool = False


Behaviour = Callable[[int, bytes], Reply]


@dataclass
class Received:
    """One request as it arrived, with the signature check's outcome."""

    path: str
    arrived: float  # time.monotonic()
    wall: float
    headers: dict[str, str]
    body: bytes
    json: Any
    verified: bool
    error: str | None
    status_sent: int


def always(status: int) -> Behaviour:
    """Answer every request with ``status``."""
    return lambda n, body: Reply(status=status)


def fail_first(count: int, status: int = 500) -> Behaviour:
    """Answer ``status`` to the first ``count`` requests, 200 afterwards."""
    return lambda n, body: Reply(status=status if n <= count else 200)


def random_failures(rate: float, seed: int, status: int = 503) -> Behaviour:
    """Answer ``status`` to a ``rate`` share of requests, reproducibly for one ``seed``."""
    rng = random.Random(seed)
    return lambda n, body: Reply(status=status if rng.random() < rate else 200)


class Receiver:
    """``with Receiver() as r: url = r.endpoint("a", secret)``; then ``r.wait_for("a", n, 10)``.

    Endpoints are ``/name`` paths; unknown paths answer 404 and are not recorded. With
    ``ssl_context`` (a server context) it serves https.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context
        self._endpoints: dict[str, tuple[Webhook, Behaviour]] = {}
        self._counts: dict[str, int] = {}
        self._received: dict[str, list[Received]] = {}
        self._active: dict[str, int] = {}  # requests being answered, per endpoint
        self._most: dict[str, int] = {}  # the most ever answered at once, per endpoint
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self.port = 0
        self._runner: web.AppRunner | None = None

    def __enter__(self) -> Receiver:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            if self._runner:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{name}", self._handle)
            # A short shutdown timeout: hanging handlers are cancelled, not awaited for 60 s.
            self._runner = web.AppRunner(
                app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
            )
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024, ssl_context=self._ssl)
            await site.start()
            self.port = self._runner.addresses[0][1]
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()
        self._loop.close()

    def endpoint(self, name: str, secret: str, behaviour: Behaviour | None = None) -> str:
        """Register ``/name`` (verifying with ``secret``) and return its URL.

        ``behaviour(n, body)`` gets the 1-based number of this request on the endpoint.
        """
        with self._lock:
            self._endpoints[name] = (Webhook(secret), behaviour or (lambda n, b: Reply()))
            self._received.setdefault(name, [])
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/{name}"

    def rekey(self, name: str, secret: str) -> None:
        """Verify ``/name``'s requests from now on with ``secret`` (one the product made)."""
        with self._lock:
            behaviour = self._endpoints[name][1]
            self._endpoints[name] = (Webhook(secret), behaviour)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            hook, behaviour = self._endpoints.get(name, (None, None))
            if hook is None or behaviour is None:
                return web.Response(status=404)
            count = self._counts[name] = self._counts.get(name, 0) + 1
            active = self._active[name] = self._active.get(name, 0) + 1
            self._most[name] = max(self._most.get(name, 0), active)
        try:
            return await self._answer(name, request, hook, behaviour, count, body, headers)
        finally:
            with self._lock:
                self._active[name] -= 1

    async def _answer(
        self,
        name: str,
        request: web.Request,
        hook: Webhook,
        behaviour: Behaviour,
        count: int,
        body: bytes,
        headers: dict[str, str],
    ) -> web.StreamResponse:
        try:
            hook.verify(body, headers)
            verified, error = True, None
        except WebhookVerificationError as exc:
            verified, error = False, str(exc)
        reply = behaviour(count, body)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        with self._lock:
            self._received[name].append(
                Received(
                    name,
                    time.monotonic(),
                    time.time(),
                    headers,
                    body,
                    data,
                    verified,
                    error,
                    reply.status,
                )
            )
        if reply.hang:
            await asyncio.sleep(3600)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.reset and request.transport is not None:
            request.transport.abort()
            return web.Response(status=500)
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)

    def most_concurrent(self, name: str) -> int:
        """The most requests ``name`` was answering at the same time."""
        with self._lock:
            return self._most.get(name, 0)

    def received(self, name: str, start: int = 0) -> list[Received]:
        """What arrived on ``name`` so far, in arrival order (from the ``start``-th on)."""
        with self._lock:
            return self._received.get(name, [])[start:]

    def wait_for(self, name: str, count: int, timeout: float) -> list[Received]:
        """Wait until ``count`` requests arrived on ``name``; AssertionError on timeout."""
        return self._wait(name, lambda got: len(got) >= count, timeout, f"{count} requests")

    def wait_for_success(self, name: str, count: int, timeout: float) -> list[Received]:
        def done(got: list[Received]) -> bool:
            return sum(1 for r in got if 200 <= r.status_sent < 300) >= count

        return self._wait(name, done, timeout, f"{count} successes")

    def wait_for_ids(
        self, name: str, ids: set[str], timeout: float, *, success: bool = False
    ) -> list[Received]:
        """Until every one of ``ids`` arrived (with ``success``: was answered 2xx); re-sent
        copies count once."""

        def done(got: list[Received]) -> bool:
            return ids <= {
                r.json["id"]
                for r in got
                if isinstance(r.json, dict) and (not success or 200 <= r.status_sent < 300)
            }

        what = "answered 2xx" if success else "arrived"
        return self._wait(name, done, timeout, f"{len(ids)} distinct events {what}")

    def _wait(
        self, name: str, done: Callable[[list[Received]], bool], timeout: float, what: str
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.received(name)
            if done(got):
                return got
            if time.monotonic() > deadline:
                summary = [(r.status_sent, r.verified, r.body[:80]) for r in got]
                raise AssertionError(
                    f"{name}: waited {timeout}s for {what}, got {len(got)}: {summary}"
                )
            time.sleep(0.02)
