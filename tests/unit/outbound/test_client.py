"""The delivery HTTP client against scripted servers on 127.0.0.1: the exact bytes sent, keep-
alive reuse, every way a response can end, TLS, and the cases that must never be sent."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
import trustme

from tests.support.listener import TcpListener
from worker import eventloop
from worker.config import parse_networks
from worker.outbound.client import RESPONSE_READ_CAP, HttpSender, Response, TransportError
from worker.outbound.destinations import DestinationPolicy

T = TypeVar("T")
LOCAL = DestinationPolicy(allowed_networks=parse_networks("127.0.0.1/32"))
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"

# What a script returns for a request: bytes to send, then "keep" (read the next request on
# the connection), "close" (close it), "hang" (send nothing more, keep it open).
Script = Callable[[int, bytes], tuple[bytes, str]]


@dataclass
class Server:
    """Answers each request as ``script(request number, raw request)`` says."""

    script: Script
    tls: ssl.SSLContext | None = None
    requests: list[bytes] = field(default_factory=list)
    closed: int = 0  # connections the client closed

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._listener = TcpListener(self._serve)

    @property
    def connections(self) -> int:
        return self._listener.connections

    @property
    def port(self) -> int:
        return self._listener.port

    def url(self, path: str = "/hook") -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    def _serve(self, raw: socket.socket) -> None:
        with raw:
            try:
                conn = self.tls.wrap_socket(raw, server_side=True) if self.tls else raw
                self._exchange(conn)
            except OSError:  # the client went away (or refused our certificate)
                pass

    def _exchange(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = _recv(conn)
                    if not chunk:
                        with self._lock:
                            self.closed += 1
                        return
                    buffer += chunk
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                while len(rest) < length:
                    rest += _recv(conn)
                request, buffer = head + b"\r\n\r\n" + rest[:length], rest[length:]
                with self._lock:
                    self.requests.append(request)
                    n = len(self.requests)
                reply, then = self.script(n, request)
                conn.sendall(reply)
                if then == "close":
                    return
                if then == "hang":
                    time.sleep(10)
                    return

    def stop(self) -> None:
        self._listener.close()


def _recv(conn: socket.socket) -> bytes:
    try:
        return conn.recv(65536)
    except OSError:
        return b""


def always(reply: bytes, then: str = "keep") -> Script:
    return lambda _n, _request: (reply, then)


async def _posts(sender: HttpSender, urls: list[str], pause_s: float = 0.0) -> list[Response]:
    responses = []
    for url in urls:
        responses.append(await sender.post(url, b'{"a":1}', {"content-type": "x/y"}, 3.0))
        await asyncio.sleep(pause_s)
    return responses


@pytest.fixture(autouse=True, params=["asyncio", "uvloop"])
def loop(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test on both event loops the worker runs on (their transports differ); after
    each, no answer is still counted as waiting for its attempt to resume (a count left over
    would cut the router's and the dispatcher's slices to one record for good)."""
    LOOP[0] = request.param
    before = eventloop.answered().waiting
    yield
    assert eventloop.answered().waiting == before == 0


LOOP = ["asyncio"]


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    return eventloop.run(main, LOOP[0])


def run(urls: list[str], pause_s: float = 0.0, **kwargs: object) -> list[Response]:
    async def go() -> list[Response]:
        sender = HttpSender(max_connections=8, destinations=LOCAL, user_agent="ua/1", **kwargs)  # type: ignore[arg-type]
        try:
            return await _posts(sender, urls, pause_s)
        finally:
            await sender.close()

    return run_loop(go())


def failure(url: str, headers: dict[str, str] | None = None, timeout_s: float = 3.0) -> str:
    async def go() -> str:
        sender = HttpSender(max_connections=8, destinations=LOCAL, user_agent="ua/1")
        try:
            with pytest.raises(TransportError) as info:
                await sender.post(url, b"{}", headers or {}, timeout_s)
            return f"{info.value.kind}: {info.value}"
        finally:
            await sender.close()

    return run_loop(go())


def test_request_bytes_and_keep_alive_reuse() -> None:
    server = Server(always(OK))
    try:
        responses = run([server.url("/a/b?x=1&y=%20"), server.url("/a/b?x=1&y=%20")])
    finally:
        server.stop()
    assert [(r.status, r.body) for r in responses] == [(200, b"ok"), (200, b"ok")]
    assert server.connections == 1
    assert server.requests[0] == (
        b"POST /a/b?x=1&y=%20 HTTP/1.1\r\n"
        + f"host: 127.0.0.1:{server.port}\r\n".encode()
        + b'user-agent: ua/1\r\ncontent-type: x/y\r\ncontent-length: 7\r\n\r\n{"a":1}'
    )


def test_connection_close_and_http10_are_not_reused() -> None:
    for reply in (
        b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok",
    ):
        server = Server(always(reply, then="close"))
        try:
            responses = run([server.url(), server.url()])
        finally:
            server.stop()
        assert [r.status for r in responses] == [200, 200]
        assert server.connections == 2


@pytest.mark.parametrize(
    ("reply", "body"),
    [
        (
            b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n"
            + b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            b"abcde",
        ),
        (b"HTTP/1.1 202 Accepted\r\n\r\nuntil the end", b"until the end"),  # ends with the close
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", b""),
    ],
)
def test_every_framing_of_a_response_body(reply: bytes, body: bytes) -> None:
    then = "close" if b"until the end" in reply else "keep"
    server = Server(always(reply, then))
    try:
        (response,) = run([server.url()])
    finally:
        server.stop()
    assert (response.status, response.body) == (int(reply.rsplit(b"HTTP/1.1 ", 1)[1][:3]), body)


def test_retry_after_is_read() -> None:
    server = Server(always(b"HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\ncontent-length: 0\r\n\r\n"))
    try:
        (response,) = run([server.url()])
    finally:
        server.stop()
    assert (response.status, response.retry_after) == (429, "7")


def test_a_body_over_the_cap_is_cut_and_its_connection_dropped() -> None:
    size = RESPONSE_READ_CAP * 4
    huge = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size + b"y" * size
    server = Server(always(huge))
    try:
        responses = run([server.url(), server.url()])
    finally:
        server.stop()
    assert [len(r.body) for r in responses] == [RESPONSE_READ_CAP, RESPONSE_READ_CAP]
    assert server.connections == 2


def test_malformed_and_unanswered_requests_fail_once() -> None:
    garbage = Server(always(b"NOT HTTP AT ALL\r\n\r\n", then="close"))
    silent = Server(always(b"", then="close"))
    try:
        assert failure(garbage.url()).startswith("network: ValueError: malformed HTTP response")
        assert failure(silent.url()) == (
            "network: ConnectionClosed: the server closed the connection before answering"
        )
        assert len(silent.requests) == 1  # never repeated behind the dispatcher's back
    finally:
        garbage.stop()
        silent.stop()


def test_a_timed_out_connection_is_closed_not_reused() -> None:
    server = Server(lambda n, _r: (b"", "hang") if n == 1 else (OK, "keep"))

    async def go() -> int:
        sender = HttpSender(max_connections=8, destinations=LOCAL, user_agent="ua/1")
        try:
            with pytest.raises(TransportError) as info:
                await sender.post(server.url(), b"{}", {}, 0.3)
            assert info.value.kind == "timeout"
            return (await sender.post(server.url(), b"{}", {}, 3.0)).status
        finally:
            await sender.close()

    try:
        assert run_loop(go()) == 200
    finally:
        server.stop()
    assert server.connections == 2


def test_an_idle_connection_the_server_closed_is_not_used() -> None:
    server = Server(always(OK, then="close"))  # answers, then closes while the client idles
    try:
        responses = run([server.url(), server.url()], pause_s=0.2)
    finally:
        server.stop()
    assert [r.status for r in responses] == [200, 200]
    assert server.connections == 2


@pytest.mark.parametrize(
    "headers",
    [{"x-evil": "a\r\nx-injected: 1"}, {"x-evil": "a\nb"}, {"bad name": "v"}, {"x:y": "v"}],
)
def test_header_smuggling_is_refused_before_connecting(headers: dict[str, str]) -> None:
    server = Server(always(OK))
    try:
        assert failure(server.url(), headers).startswith("invalid: ")
    finally:
        server.stop()
    assert server.connections == 0


def test_https_verifies_the_certificate() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    server = Server(always(OK), tls=server_context)
    try:
        responses = run([server.url(), server.url()], ssl_context=client_context)
        assert [r.status for r in responses] == [200, 200]
        assert server.connections == 1
        assert "CERTIFICATE_VERIFY_FAILED" in failure(server.url())  # not trusted by default
    finally:
        server.stop()


def test_a_reused_connection_closed_before_answering_is_retried_once_fresh() -> None:
    # The second request arrives on the kept connection as the server closes it unanswered.
    server = Server(lambda n, _r: (b"", "close") if n == 2 else (OK, "keep"))

    async def go() -> tuple[list[int], int]:
        sender = HttpSender(max_connections=8, destinations=LOCAL, user_agent="ua/1")
        try:
            statuses = [(await _posts(sender, [server.url()]))[0].status for _ in range(2)]
            return statuses, sender.retried
        finally:
            await sender.close()

    try:
        assert run_loop(go()) == ([200, 200], 1)
    finally:
        server.stop()
    assert len(server.requests) == 3 and server.connections == 2


def test_the_servers_keep_alive_hint_less_a_margin_bounds_reuse() -> None:
    hinted = b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=2, max=100\r\ncontent-length: 2\r\n\r\nok"
    server = Server(always(hinted))
    try:
        run([server.url(), server.url()], pause_s=0.3)  # well inside 2 s - 1 s: reused
        assert server.connections == 1
        run([server.url(), server.url()], pause_s=1.2)  # past it: a fresh connection
        assert server.connections == 3
    finally:
        server.stop()


def test_a_stray_second_response_retires_the_connection() -> None:
    server = Server(always(OK + b"HTTP/1.1 200 O"))  # half a response nobody asked for
    try:
        responses = run([server.url(), server.url()])
    finally:
        server.stop()
    assert [(r.status, r.body) for r in responses] == [(200, b"ok"), (200, b"ok")]
    assert server.connections == 2


def test_a_body_delimited_by_the_close_under_another_transfer_coding() -> None:
    server = Server(always(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nraw", "close"))
    try:
        (response,) = run([server.url()])
    finally:
        server.stop()
    assert (response.status, response.body) == (200, b"raw")


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "101 Switching Protocols"),
        (
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\nconnection: upgrade\r\n\r\n",
            "101 Switching Protocols",
        ),
        (b"HTTP/1.1 100 Continue\r\n\r\n" * 11, "more than 10 interim"),
        (
            b"HTTP/1.1 200 OK\r\n" + b"x-h: v\r\n" * 101 + b"content-length: 0\r\n\r\n",
            "more than 100 response headers",
        ),
    ],
)
def test_responses_that_are_no_answer_fail_the_attempt(reply: bytes, error: str) -> None:
    server = Server(always(reply, "close"))
    try:
        assert error in failure(server.url())
    finally:
        server.stop()


def test_endless_headers_fail_the_attempt_after_64_kib() -> None:
    offered = 64 * 1024 * 1024
    sent = [0]

    def endless(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nx-endless: ")
                chunk = b"a" * 65536
                while sent[0] < offered:
                    conn.sendall(chunk)
                    sent[0] += len(chunk)
            except OSError:  # the client hung up
                pass

    listener = TcpListener(endless)
    try:
        error = failure(f"http://127.0.0.1:{listener.port}/hook", timeout_s=10.0)
    finally:
        listener.close()
    assert error == "network: ValueError: response headers over 65536 bytes"
    assert sent[0] < offered / 4  # the client stopped reading long before the end
