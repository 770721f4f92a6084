"""The HTTP boundary of delivery: one POST, its response or a typed transport error.

Deliveries go out over a small HTTP/1.1 client of our own: asyncio protocols, keep-alive
connections pooled per origin, responses parsed by httptools (llhttp, Node.js's parser). It
was chosen by measurement (issue 5): a POST costs it about 24 us of CPU on uvloop against
130 us for aiohttp's client, which was a third of the worker's CPU per delivery. It does only
what a webhook POST needs: redirects are never followed, no proxies, no cookies, no
compression; the response body is read up to a cap. httpx stays in the CLI.

Every connection is opened to an address the destination policy permits, checked on the
address being connected (IP literals included), so a DNS answer that changes between an
earlier check and the connect (rebinding) cannot slip through.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from dataclasses import dataclass
from typing import cast

import httptools
from yarl import URL

from worker.outbound.destinations import (
    BlockedDestination,
    DestinationPolicy,
    GuardedResolver,
    literal_address,
)

__all__ = ["HttpSender", "Response", "TransportError"]

RESPONSE_READ_CAP = 64 * 1024
# Parsed destination URLs kept per process (a URL string always parses the same way; the
# address it resolves to is checked on every connect, not here).
URL_CACHE_SIZE = 100_000
DNS_TTL_S = 10.0  # how long a (checked) DNS answer is reused for new connections
IDLE_TIMEOUT_S = 15.0  # a kept-alive connection idle this long is closed
SWEEP_INTERVAL_S = 5.0
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 field names
_SPACE = re.compile(r"[\s\0]")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes  # at most RESPONSE_READ_CAP bytes
    retry_after: str | None
    latency_s: float


class TransportError(Exception):
    """No HTTP status: ``kind`` is ``timeout``, ``network`` or ``blocked``."""

    def __init__(self, kind: str, message: str, latency_s: float) -> None:
        super().__init__(message)
        self.kind = kind
        self.latency_s = latency_s


class ConnectionClosed(ConnectionResetError):
    """The server closed the connection before the response was complete."""

    def __init__(self, answered: bool, reset: bool) -> None:
        how = "reset" if reset else "closed"
        when = "in the middle of its response" if answered else "before answering"
        super().__init__(f"the server {how} the connection {when}")


Origin = tuple[str, str, int]


@dataclass(frozen=True, slots=True)
class _Target:
    """A destination URL, parsed once: where to connect and the first lines of a request."""

    origin: Origin
    host: str  # a DNS name, or the canonical address of an IP literal
    port: int
    literal: bool
    tls: bool
    head: bytes  # request line and host header


def _target(url: str, user_agent: str) -> _Target:
    """``url`` parsed; a legacy numeric IPv4 host (``2130706433``, ``0x7f.1``) is the dotted
    address it names (as browsers read it). BlockedDestination for a numeric host that is no
    address; ValueError for anything else we cannot send to."""
    parsed = URL(url)
    scheme = parsed.scheme
    host = parsed.raw_host
    if scheme not in _DEFAULT_PORTS or not host:
        raise ValueError(f"not an http(s) URL: {url[:200]}")
    if parsed.raw_user or parsed.raw_password:
        raise ValueError("credentials in the URL are not sent")
    try:
        address = literal_address(host)
    except ValueError as exc:
        raise BlockedDestination(str(exc)) from None
    port = parsed.port or _DEFAULT_PORTS[scheme]
    name = address or host
    authority = f"[{name}]" if ":" in name else name
    if port != _DEFAULT_PORTS[scheme]:
        authority += f":{port}"
    path = parsed.raw_path_qs or "/"
    if _SPACE.search(path) or _SPACE.search(authority):  # yarl encodes them; never trust it
        raise ValueError("white space in the URL")
    head = f"POST {path} HTTP/1.1\r\nhost: {authority}\r\nuser-agent: {user_agent}\r\n"
    tls = scheme == "https"
    return _Target((scheme, name, port), name, port, address is not None, tls, head.encode())


class _Connection(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection: one request at a time, its response parsed as it
    arrives. The result is ``(status, body, retry_after)``."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] | None = None  # done once the connection is gone
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes, str | None]] | None = None
        self.reusable = True
        self.closed = False
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.chunks: list[bytes] = []
        self.size = 0
        self.retry_after: str | None = None
        self.framed = False  # content-length or chunked: the body's end is known
        self.answered = False  # a byte of the response arrived
        self.headers_done = False

    def send(self, head: bytes, body: bytes) -> asyncio.Future[tuple[int, bytes, str | None]]:
        assert self.transport is not None
        self._reset()
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.writelines((head, body))
        return self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.lost = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # bytes nobody asked for: out of step, never reused
            self.reusable = False
            self.close()
            return
        self.answered = True
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self.reusable = False
            self._fail(ValueError(f"malformed HTTP response: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(None)
        if self.waiter is None or self.waiter.done():
            return
        if self.headers_done and not self.framed:  # a body delimited by the close
            self.reusable = False
            self._complete()
        else:
            self._fail(ConnectionClosed(self.answered, reset=exc is not None))

    # -- httptools callbacks -------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower == b"retry-after":
            self.retry_after = value.decode("latin-1")
        elif lower in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        room = RESPONSE_READ_CAP - self.size
        if room > 0:
            chunk = body[:room]
            self.chunks.append(chunk)
            self.size += len(chunk)
        if self.size >= RESPONSE_READ_CAP:  # enough: the rest is not read
            self.reusable = False
            self._complete()
            self.close()

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200 and self.status != 101:  # interim (100, 103): wait on
            self._reset()
            self.answered = True
            return
        if not self.parser.should_keep_alive():
            self.reusable = False
        self._complete()

    # -- outcome -------------------------------------------------------------------------

    def _complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((self.status, b"".join(self.chunks), self.retry_after))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class HttpSender:
    """Pooled HTTP/1.1 POSTs for deliveries; create and use inside one running event loop.

    ``max_connections`` bounds the requests in flight (and the idle connections kept). Every
    connection's peer address is checked against ``destinations`` as it is opened.
    """

    def __init__(
        self,
        *,
        max_connections: int,
        destinations: DestinationPolicy,
        user_agent: str,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._policy = destinations
        self._resolver = GuardedResolver(destinations)
        self._ssl = ssl_context or ssl.create_default_context()
        self._user_agent = user_agent
        self._max = max_connections
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[Origin, list[_Connection]] = {}
        self._targets: dict[str, _Target] = {}
        self._dns: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._names: set[str] = set()  # header names already checked
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> Response:
        start = time.perf_counter()
        try:
            target = self._targets.get(url)
            if target is None:
                if len(self._targets) >= URL_CACHE_SIZE:
                    self._targets.clear()
                target = self._targets[url] = _target(url, self._user_agent)
            head = target.head + self._fields(headers, len(body))
            async with asyncio.timeout(timeout_s), self._slots:
                status, content, retry_after = await self._exchange(target, head, body)
            return Response(status, content, retry_after, time.perf_counter() - start)
        except TimeoutError:
            raise TransportError(
                "timeout", f"no response within {timeout_s:g}s", time.perf_counter() - start
            ) from None
        except BlockedDestination as exc:
            raise TransportError("blocked", str(exc), time.perf_counter() - start) from None
        except (OSError, ValueError) as exc:
            message = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
            raise TransportError("network", message, time.perf_counter() - start) from None

    async def close(self) -> None:
        """Close the idle connections and wait (up to a second) until they are gone: a TLS
        connection closes with a last exchange, which must not outlive the event loop."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        closing = [conn for idle in self._idle.values() for conn in idle]
        self._idle.clear()
        for conn in closing:
            conn.close()
        lost = [conn.lost for conn in closing if conn.lost is not None and not conn.lost.done()]
        if lost:
            await asyncio.wait(lost, timeout=1.0)
        await self._resolver.close()

    # -- one exchange ---------------------------------------------------------------------

    def _fields(self, headers: dict[str, str], length: int) -> bytes:
        """The header lines after ``host`` and ``user-agent``; ValueError for a name that is
        no token or a value with a line break (no header can be smuggled in)."""
        for name in headers:
            if name not in self._names:
                if not _TOKEN.fullmatch(name):
                    raise ValueError(f"invalid header name {name[:100]!r}")
                if len(self._names) < 10_000:
                    self._names.add(name)
        text = "".join([f"{k}: {v}\r\n" for k, v in headers.items()])
        if text.count("\n") != len(headers) or text.count("\r") != len(headers) or "\0" in text:
            raise ValueError("line break or NUL in a header value")
        return f"{text}content-length: {length}\r\n\r\n".encode()

    async def _exchange(
        self, target: _Target, head: bytes, body: bytes
    ) -> tuple[int, bytes, str | None]:
        # One request per attempt, never repeated here (a POST the server may have read): a
        # kept-alive connection the server closes as we send fails the attempt, as with
        # aiohttp. Closes that arrive while it is idle take it out of the pool first.
        conn = self._take_idle(target.origin) or await self._connect(target)
        finished = False
        try:
            result = await conn.send(head, body)
            finished = True
            return result
        finally:
            if finished and conn.reusable and not conn.closed and not self._closed:
                self._give_back(conn)
            else:
                conn.close()

    # -- connections ------------------------------------------------------------------------

    async def _connect(self, target: _Target) -> _Connection:
        loop = asyncio.get_running_loop()
        if target.literal:
            addresses = [target.host]
        else:
            addresses = await self._resolve(target.host, target.port)
        error: OSError | None = None
        for address in addresses:
            self._policy.check(target.host, address)  # the very address connected to
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await loop.sock_connect(sock, (address, target.port))
                _, conn = await loop.create_connection(
                    lambda: _Connection(target.origin),
                    sock=sock,
                    ssl=self._ssl if target.tls else None,
                    server_hostname=target.host if target.tls else None,
                )
                return conn
            except OSError as exc:
                sock.close()
                error = exc
            except BaseException:
                sock.close()
                raise
        assert error is not None
        raise error

    async def _resolve(self, host: str, port: int) -> list[str]:
        """The permitted addresses ``host`` names, reused for DNS_TTL_S."""
        now = time.monotonic()
        cached = self._dns.get((host, port))
        if cached is not None and cached[0] > now:
            return cached[1]
        results = await self._resolver.resolve(host, port, socket.AF_UNSPEC)
        addresses = list(dict.fromkeys(str(r["host"]) for r in results))
        if len(self._dns) >= URL_CACHE_SIZE:
            self._dns.clear()
        self._dns[(host, port)] = (now + DNS_TTL_S, addresses)
        return addresses

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to be stale
            if not conn.closed:
                return conn
        return None

    def _give_back(self, conn: _Connection) -> None:
        conn.idle_since = time.monotonic()
        self._idle.setdefault(conn.origin, []).append(conn)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_INTERVAL_S, self._sweep)

    def _sweep(self) -> None:
        """Close connections idle for IDLE_TIMEOUT_S, and the oldest beyond the limit."""
        self._sweeper = None
        expired = time.monotonic() - IDLE_TIMEOUT_S
        kept: list[_Connection] = []
        for origin, idle in list(self._idle.items()):
            for conn in idle:
                if conn.closed or conn.idle_since < expired:
                    conn.close()
                else:
                    kept.append(conn)
            del self._idle[origin]
        kept.sort(key=lambda c: c.idle_since)
        excess = max(0, len(kept) - self._max)
        for conn in kept[:excess]:
            conn.close()
        for conn in kept[excess:]:
            self._idle.setdefault(conn.origin, []).append(conn)
        if self._idle and not self._closed:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_INTERVAL_S, self._sweep)
