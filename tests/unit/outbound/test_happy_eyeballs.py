"""Staggered connects (Happy Eyeballs): a name whose first address swallows connection
attempts (here ``localhost``'s ::1 on a listener whose accept queue is full, so its SYNs are
dropped as by a black hole) is reached on its next address (127.0.0.1) within the attempt."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from tests.support.listener import TcpListener
from worker import eventloop
from worker.config import parse_networks
from worker.outbound.client import HttpSender, TransportError
from worker.outbound.destinations import DestinationPolicy
from worker.outbound.resolver import Resolver


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@contextlib.contextmanager
def _black_hole_v6(port: int) -> Iterator[None]:
    """[::1]:port accepting nothing: a full accept queue drops new SYNs."""
    listener = socket.socket(socket.AF_INET6)
    fillers = []
    try:
        listener.bind(("::1", port))
        listener.listen(0)
        for _ in range(2):  # what the queue holds, never accepted
            filler = socket.socket(socket.AF_INET6)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("::1", port))
            fillers.append(filler)
        time.sleep(0.1)
        yield
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_a_black_holed_first_address_falls_back_to_the_next() -> None:
    def ok(conn: socket.socket) -> None:
        with conn:
            request = b""
            while not request.endswith(b"\r\n\r\n{}"):
                chunk = conn.recv(65536)
                if not chunk:
                    return
                request += chunk
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    server = TcpListener(ok)  # 127.0.0.1
    policy = DestinationPolicy(allowed_networks=parse_networks("127.0.0.1/32,::1/128"))

    async def main() -> tuple[str, float]:
        resolver = Resolver(policy)
        order = await resolver.resolve("localhost")
        await resolver.close()
        assert order[0] == "::1", order  # the black-holed address is tried first
        sender = HttpSender(max_connections=4, destinations=policy, user_agent="ua/1")
        start = time.perf_counter()
        try:
            response = await sender.post(f"http://localhost:{server.port}/", b"{}", {}, 3.0)
            return str(response.status), time.perf_counter() - start
        except TransportError as exc:
            return f"{exc.kind}: {exc}", time.perf_counter() - start
        finally:
            await sender.close()

    try:
        with _black_hole_v6(server.port):
            # The black hole is real: a plain connect to it does not complete.
            probe = socket.socket(socket.AF_INET6)
            probe.settimeout(0.5)
            with pytest.raises(TimeoutError):
                probe.connect(("::1", server.port))
            probe.close()
            outcome, elapsed = eventloop.run(main(), "uvloop")
    finally:
        server.close()
    assert outcome == "200"
    assert elapsed < 2.0  # the 250 ms stagger, not the 3 s attempt timeout
