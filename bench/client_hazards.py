"""``python -m bench.client_hazards``: the delivery client against issue 16's hazards, on
127.0.0.1, printed as numbers (no pass/fail: the tests assert outcomes, this measures).

* a receiver sending a 64 MiB header line: time until the attempt fails, the longest event
  loop stall meanwhile, memory grown;
* DNS: p50/p99 of another workspace's deliveries (each to a new name) while 50 deliveries
  hang on names whose server never answers, against the same without them;
* HTTPS (trustme certificates): deliveries/s and CPU per delivery of the client against a
  raw aiohttp client, same receiver, same run;
* keep-alive: failed sends out of 600 timed around the idle close of a server closing after
  2 s unannounced, over a 50 ms link, with the client as it is and as it was before issue 16
  (idle connections kept 15 s, no repeat on a fresh connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import random
import resource
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import trustme
from aiohttp import web

from tests.support.listener import TcpListener
from tests.unit.outbound.test_resolver import Dns, Ok
from worker import eventloop
from worker.config import parse_networks
from worker.outbound.client import HttpSender, TransportError
from worker.outbound.destinations import DestinationPolicy

LOCAL = DestinationPolicy(allowed_networks=parse_networks("127.0.0.1/32"))


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


async def _watch_stalls(stop: asyncio.Event) -> float:
    """The longest gap between 1 ms ticks of the loop until ``stop``, in seconds."""
    worst = 0.0
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        worst = max(worst, now - last - 0.001)
        last = now
    return worst


def endless_header() -> dict[str, float]:
    def serve(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nx-endless: ")
                chunk = b"a" * 65536
                for _ in range(1024):  # 64 MiB
                    conn.sendall(chunk)
            except OSError:
                pass

    listener = TcpListener(serve)

    async def main() -> dict[str, float]:
        sender = HttpSender(max_connections=4, destinations=LOCAL, user_agent="bench/1")
        stop = asyncio.Event()
        watcher = asyncio.ensure_future(_watch_stalls(stop))
        before = _rss_mb()
        start = time.perf_counter()
        try:
            await sender.post(f"http://127.0.0.1:{listener.port}/", b"{}", {}, 30.0)
            error = "none"
        except TransportError as exc:
            error = str(exc)
        elapsed = time.perf_counter() - start
        grown = _rss_mb() - before
        stop.set()
        stall = await watcher
        await sender.close()
        print(f"  64 MiB header: {error}")
        return {"fail_s": elapsed, "max_stall_ms": stall * 1000, "rss_grown_mb": grown}

    try:
        return eventloop.run(main(), "uvloop")
    finally:
        listener.close()


def dns_isolation(n: int = 200) -> dict[str, float]:
    from http.server import ThreadingHTTPServer

    dns = Dns()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    policy = DestinationPolicy(
        allowed_networks=parse_networks("127.0.0.1/32"), dns_servers=(dns.address,)
    )

    async def run(hanging: int, tag: str) -> list[float]:
        sender = HttpSender(max_connections=600, destinations=policy, user_agent="bench/1")
        stuck = [
            asyncio.ensure_future(
                _quiet(sender.post(f"http://dead-{tag}-{i}.test:{port}/", b"{}", {}, 8.0, "a"))
            )
            for i in range(hanging)
        ]
        await asyncio.sleep(0.2)
        latencies = []
        for i in range(n):
            start = time.perf_counter()
            await sender.post(f"http://ok-{tag}-{i}.test:{port}/", b"{}", {}, 5.0, "b")
            latencies.append(time.perf_counter() - start)
        for task in stuck:
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
        await sender.close()
        return latencies

    try:
        quiet = eventloop.run(run(0, "q"), "uvloop")
        loaded = eventloop.run(run(50, "l"), "uvloop")
    finally:
        dns.close()
        server.shutdown()
        server.server_close()

    def p(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100)[int(q) - 1] * 1000

    return {
        "quiet_p50_ms": p(quiet, 50),
        "quiet_p99_ms": p(quiet, 99),
        "hanging50_p50_ms": p(loaded, 50),
        "hanging50_p99_ms": p(loaded, 99),
        "p99_ratio": p(loaded, 99) / p(quiet, 99),
    }


async def _quiet(coro: Any) -> None:
    with contextlib.suppress(TransportError):
        await coro


def _https_receiver(cert_dir: str, ready: Any) -> None:
    """An aiohttp HTTPS receiver answering 200, in a process of its own (its CPU not ours)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(f"{cert_dir}/server.pem")

    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/hook", ok)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        ready.send(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.Event().wait()

    eventloop.run(main(), "uvloop")


def https_throughput(n: int = 5000, concurrency: int = 50) -> dict[str, float]:
    ca = trustme.CA()
    with tempfile.TemporaryDirectory() as cert_dir:
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
            f"{cert_dir}/server.pem"
        )
        parent, child = multiprocessing.Pipe()
        receiver = multiprocessing.Process(target=_https_receiver, args=(cert_dir, child))
        receiver.start()
        port = parent.recv()
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    url = f"https://127.0.0.1:{port}/hook"
    body = b'{"event":"x.created","id":"ev-1","data":{"a":1}}'
    headers = {"content-type": "application/json", "webhook-id": "msg_1"}

    async def ours() -> None:
        sender = HttpSender(
            max_connections=concurrency,
            destinations=LOCAL,
            user_agent="bench/1",
            ssl_context=client_context,
        )
        await _drive(lambda: sender.post(url, body, headers, 10.0), n, concurrency)
        await sender.close()

    async def raw_aiohttp() -> None:
        connector = aiohttp.TCPConnector(limit=concurrency, ssl=client_context)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one() -> None:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()

            await _drive(one, n, concurrency)

    results: dict[str, float] = {}
    try:
        for name, main in (("ours", ours), ("aiohttp", raw_aiohttp), ("ours2", ours)):
            cpu, wall = time.process_time(), time.perf_counter()
            eventloop.run(main(), "uvloop")
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            results[f"{name}_per_s"] = n / wall
            results[f"{name}_cpu_us"] = cpu / n * 1e6
    finally:
        receiver.terminate()
        receiver.join()
    results["ratio"] = max(results["ours_per_s"], results["ours2_per_s"]) / results["aiohttp_per_s"]
    return results


async def _drive(one: Any, n: int, concurrency: int) -> None:
    remaining = [n]

    async def worker() -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            await one()

    await asyncio.gather(*[worker() for _ in range(concurrency)])


class _Before(HttpSender):
    """The client as it was: a reused connection's close fails the attempt."""

    async def _exchange(
        self, target: Any, key: Any, context: Any, head: bytes, body: bytes, tenant: str
    ) -> Any:
        conn = self._take_idle(key) or await self._connect(target, key, context, tenant)
        conn.idle_limit = 15.0
        return await self._send(conn, head, body)


def keepalive_race() -> dict[str, float]:
    from tests.support.tcp_proxy import TcpProxy
    from tests.unit.outbound.test_keepalive import _idle_closing_server

    server = _idle_closing_server(2.0)
    results: dict[str, float] = {}
    try:
        with TcpProxy(server.port, delay_s=0.05) as proxy:
            url = f"http://127.0.0.1:{proxy.port}/"
            for name, kind in (("now", HttpSender), ("before", _Before)):
                failures = eventloop.run(_lanes(kind, url), "uvloop")
                results[f"{name}_failed_of_600"] = failures
    finally:
        server.close()
    return results


async def _lanes(kind: type[HttpSender], url: str) -> int:
    rng = random.Random(16)
    failed = [0]

    async def lane() -> None:
        sender = kind(max_connections=1, destinations=LOCAL, user_agent="bench/1")
        for pause in [0.0] + [2.0 + rng.uniform(-0.3, 0.3) for _ in range(5)]:
            await asyncio.sleep(pause)
            try:
                await sender.post(url, b"{}", {}, 10.0)
            except TransportError:
                failed[0] += 1
        await sender.close()

    await asyncio.gather(*[lane() for _ in range(100)])
    return failed[0]


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    for name, measure in (
        ("endless header", endless_header),
        ("dns isolation", dns_isolation),
        ("https throughput", https_throughput),
        ("keep-alive race", keepalive_race),
    ):
        print(f"{name}:")
        for key, value in measure().items():
            print(f"  {key}: {value:.2f}")


if __name__ == "__main__":
    main()
