"""Keep-alive against real servers' idle closes, over a link with 50 ms of round trip: sends
timed all around each server's idle timeout, none may fail.

* Node's http server with its defaults (Debian's ``nodejs``): closes idle connections after
  5 s and says so (``Keep-Alive: timeout=5``);
* Debian's nginx with ``keepalive_timeout 5s``: closes idle connections after 5 s and says
  nothing (no ``Keep-Alive`` header without a second value);
* a server that closes idle connections after 2 s and says nothing (as gunicorn does).
"""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.listener import TcpListener
from tests.support.nginx import Nginx, nginx_binary
from tests.support.tcp_proxy import TcpProxy
from worker import eventloop
from worker.config import parse_networks
from worker.outbound.client import HttpSender, TransportError
from worker.outbound.destinations import DestinationPolicy

pytestmark = pytest.mark.slow

LOCAL = DestinationPolicy(allowed_networks=parse_networks("127.0.0.1/32"))
NODE_SCRIPT = Path(__file__).parents[2] / "support" / "node_receiver.js"
LANES = 100  # concurrent senders, one connection each
SENDS_PER_LANE = 6
LINK_RTT_S = 0.05


def _idle_closing_server(idle_s: float) -> TcpListener:
    """Answers every POST 200 and closes a connection idle for ``idle_s``, unannounced."""

    def serve(conn: socket.socket) -> None:
        conn.settimeout(idle_s)
        buffer = b""
        with conn:
            try:
                while True:
                    while b"\r\n\r\n" not in buffer:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        buffer += chunk
                    head, _, rest = buffer.partition(b"\r\n\r\n")
                    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                    while len(rest) < length:
                        rest += conn.recv(65536)
                    buffer = rest[length:]
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            except (TimeoutError, OSError):  # idle too long (or the client went away)
                return

    return TcpListener(serve)


@pytest.fixture
def node_port() -> Iterator[int]:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node is not installed (Debian: apt-get install nodejs; scripts/test does)")
    process = subprocess.Popen([node, str(NODE_SCRIPT)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield int(process.stdout.readline())
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def nginx_port() -> Iterator[int]:
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx; scripts/test does)")
    with Nginx(keepalive_timeout="5s") as nginx:
        yield nginx.port


async def _lane(url: str, pauses: list[float], failures: list[str]) -> int:
    sender = HttpSender(max_connections=1, destinations=LOCAL, user_agent="ua/1")
    try:
        for pause in [0.0, *pauses]:
            await asyncio.sleep(pause)
            try:
                response = await sender.post(url, b'{"a":1}', {"webhook-id": "msg_1"}, 10.0)
                if response.status != 200:
                    failures.append(f"HTTP {response.status}")
            except TransportError as exc:
                failures.append(f"{exc.kind}: {exc}")
        return sender.retried
    finally:
        await sender.close()


def _send_around(port: int, idle_close_s: float) -> tuple[int, list[str], int]:
    """LANES x SENDS_PER_LANE sends through a 50 ms link, each lane pausing a random time
    within 0.3 s either side of the server's idle close: (sends, failures, retries)."""
    rng = random.Random(16)
    failures: list[str] = []
    with TcpProxy(port, delay_s=LINK_RTT_S) as proxy:
        url = f"http://127.0.0.1:{proxy.port}/hook"
        plans = [
            [idle_close_s + rng.uniform(-0.3, 0.3) for _ in range(SENDS_PER_LANE - 1)]
            for _ in range(LANES)
        ]

        async def main() -> int:
            retried = await asyncio.gather(*[_lane(url, plan, failures) for plan in plans])
            return sum(retried)

        retries = eventloop.run(main(), "uvloop")
    return LANES * SENDS_PER_LANE, failures, retries


def test_nodes_default_server_loses_nothing_around_its_idle_close(node_port: int) -> None:
    # Node closes at 5 s, advertising 5: the client keeps a connection 4 s at most.
    sends, failures, _ = _send_around(node_port, 5.0)
    assert sends >= 500 and failures == []


def test_nginx_with_keepalive_timeout_5s_loses_nothing_around_its_idle_close(
    nginx_port: int,
) -> None:
    # nginx closes at 5 s without saying so: the client's own 4 s default keeps it clear.
    sends, failures, _ = _send_around(nginx_port, 5.0)
    assert sends >= 500 and failures == []


def test_a_server_closing_after_2s_unannounced_loses_nothing() -> None:
    # Inside the client's 4 s default: closes cross requests, each retried once, fresh.
    server = _idle_closing_server(2.0)
    try:
        sends, failures, retries = _send_around(server.port, 2.0)
    finally:
        server.close()
    assert sends >= 500 and failures == []
    assert retries > 0  # the race did happen, and was absorbed
