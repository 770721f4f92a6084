"""The HTTP boundary of delivery: one POST, its response or a typed transport error.

Deliveries go out over a small HTTP/1.1 client of our own: asyncio protocols, keep-alive
connections pooled per origin (this module), one connection and its response parsing in
:mod:`worker.outbound.connection`, host lookups in :mod:`worker.outbound.resolver`. It was
chosen by measurement (issue 5): a POST costs it about 24 us of CPU on uvloop against 130 us
for aiohttp's client, which was a third of the worker's CPU per delivery. It does only what a
webhook POST needs: redirects are never followed, no cookies, no compression; the response
body is read up to a cap.

Every connection is opened to an address the destination policy permits, checked on the
address being connected (IP literals included), so a DNS answer that changes between an
earlier check and the connect (rebinding) cannot slip through. Several addresses are tried
staggered (Happy Eyeballs, RFC 8305, 250 ms apart, families interleaved).

Keep-alive: an idle connection is reused only while younger than the server's own
``Keep-Alive: timeout=`` less a margin (4 s when it gives none, see
:data:`worker.outbound.connection.DEFAULT_IDLE_S`), checked when it is taken. A close that
still crosses a request is retried once, at once, on a fresh connection, when the connection
was a reused one and no byte of the response came back: the server did not act on it (it
closes idle connections only), and a repeat carries the same ``webhook-id`` anyway.

Client certificates (mTLS): a request may carry its own :class:`ClientCertificate` (a
subscription's), presented instead of the global one; its connections are pooled apart (the
pool is keyed by origin and certificate), so no connection made with one certificate carries
a request meant to go with another, or with none.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from dataclasses import dataclass

import aiohappyeyeballs
from yarl import URL

from worker.errors import DeliveryFailed
from worker.eventloop import answered
from worker.outbound.connection import (
    RESPONSE_READ_CAP,
    Connection,
    ConnectionClosed,
    Origin,
    PoolKey,
    Result,
)
from worker.outbound.destinations import BlockedDestination, DestinationPolicy, literal_address
from worker.outbound.headers import InvalidHeader, check_name
from worker.outbound.proxy import Proxy, ProxyError, authority
from worker.outbound.resolver import Resolver
from worker.outbound.tls import ClientCertificate, InvalidCertificate, TlsContexts

__all__ = [
    "RESPONSE_READ_CAP",
    "ClientCertificate",
    "HttpSender",
    "Response",
    "TransportError",
    "post_once",
]

# Parsed destination URLs kept per process (a URL string always parses the same way; the
# address it resolves to is checked on every connect, not here).
URL_CACHE_SIZE = 100_000
SWEEP_INTERVAL_S = 1.0
HAPPY_EYEBALLS_DELAY_S = 0.25
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # in a header value (HTAB allowed)
_SPACE = re.compile(r"[\s\0]")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes  # at most RESPONSE_READ_CAP bytes
    retry_after: str | None
    latency_s: float
    headers: tuple[tuple[str, str], ...] = ()  # as received, names lowercased


class TransportError(DeliveryFailed):
    """No HTTP status: ``kind`` is ``timeout``, ``network``, ``blocked`` (the destination
    is not permitted) or ``invalid`` (the request itself cannot be sent: a malformed URL or
    header; repeating it cannot help)."""

    def __init__(self, kind: str, message: str, latency_s: float) -> None:
        super().__init__(message)
        self.kind = kind
        self.latency_s = latency_s


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
        resolver: Resolver | None = None,
        proxy: str | None = None,
        tls: TlsContexts | None = None,
    ) -> None:
        """``proxy``: ``http://[user:password@]host:port`` of a forward proxy every request
        goes through (``WEBHOOK_EGRESS_PROXY``). ``tls``: the TLS contexts (the default one
        and one per client certificate); else ``ssl_context`` (or the system's) is the
        default."""
        self._policy = destinations
        self._resolver = resolver or Resolver(destinations)
        self._proxy = Proxy.from_url(proxy) if proxy else None
        self._tls = tls or TlsContexts(ssl_context)
        self._user_agent = user_agent
        self._max = max_connections
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[PoolKey, list[Connection]] = {}
        self._targets: dict[str, _Target] = {}
        self._names: set[str] = set()  # header names already checked
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False
        self.retried = 0  # requests repeated after a reused connection closed unanswered

    async def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        timeout_s: float,
        tenant: str = "",
        certificate: ClientCertificate | None = None,
    ) -> Response:
        """POST ``body``; ``tenant`` (the workspace) shares host lookups' concurrency cap;
        ``certificate`` is presented to an https receiver instead of the global one. A
        certificate that cannot be loaded is an ``invalid`` TransportError."""
        start = time.perf_counter()
        try:
            target = self._targets.get(url)
            if target is None:
                if len(self._targets) >= URL_CACHE_SIZE:
                    self._targets.clear()
                target = _target(url, self._user_agent)
                self._targets[url] = target
            head = target.head + self._fields(headers, len(body))
            if not target.tls:
                certificate = None
            context = self._tls.get(certificate) if target.tls else None
        except BlockedDestination as exc:
            raise TransportError("blocked", str(exc), time.perf_counter() - start) from None
        except (ValueError, InvalidCertificate) as exc:
            raise TransportError("invalid", str(exc), time.perf_counter() - start) from None
        try:
            async with asyncio.timeout(timeout_s), self._slots:
                status, content, retry_after, fields = await self._exchange(
                    target, (target.origin, certificate), context, head, body, tenant
                )
            return Response(status, content, retry_after, time.perf_counter() - start, fields)
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
        """The header lines after ``host`` and ``user-agent``; InvalidHeader for a name that
        is no token or a value with a control character (no header can be smuggled in)."""
        for name in headers:
            if name not in self._names:
                check_name(name)
                if len(self._names) < 10_000:
                    self._names.add(name)
        if _CONTROL.search("\t".join(headers.values())):
            bad = next(k for k, v in headers.items() if _CONTROL.search(v))
            raise InvalidHeader(f"control character (CR, LF, NUL, ...) in header {bad!r}")
        text = "".join([f"{k}: {v}\r\n" for k, v in headers.items()])
        try:
            return f"{text}content-length: {length}\r\n\r\n".encode("latin-1")
        except UnicodeEncodeError:
            raise InvalidHeader("a header value has characters beyond Latin-1") from None

    async def _exchange(
        self,
        target: _Target,
        key: PoolKey,
        context: ssl.SSLContext | None,
        head: bytes,
        body: bytes,
        tenant: str,
    ) -> Result:
        conn = self._take_idle(key)
        if conn is None:
            return await self._send(await self._connect(target, key, context, tenant), head, body)
        try:
            return await self._send(conn, head, body)
        except ConnectionClosed as exc:
            if exc.answered:  # the server read the request: it is the attempt's outcome
                raise
        # A reused connection the server closed as the request went out: once more, fresh.
        self.retried += 1
        return await self._send(await self._connect(target, key, context, tenant), head, body)

    async def _send(self, conn: Connection, head: bytes, body: bytes) -> Result:
        if conn.absolute:  # plain http through the proxy: the absolute form, to the address
            end = head.index(b"\r\n") + 2
            head = b"POST " + conn.absolute + head[5:end] + conn.extra + head[end:]
        answer = conn.send(head, body)
        try:
            return await answer
        finally:
            if answer.done() and not answer.cancelled():  # counted when it was answered
                answered().waiting -= 1
            # Reusable only when the response came whole (not on timeout or error).
            if conn.reusable and not self._closed:
                self._give_back(conn)
            else:
                conn.close()

    # -- connections ------------------------------------------------------------------------

    async def _connect(
        self, target: _Target, key: PoolKey, context: ssl.SSLContext | None, tenant: str
    ) -> Connection:
        if target.literal:
            addresses = [target.host]
        else:
            addresses = await self._resolver.resolve(target.host, tenant)
        if self._proxy is not None:
            return await self._connect_via_proxy(self._proxy, target, key, context, addresses)
        loop = asyncio.get_running_loop()
        infos: list[tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[str, int]]]
        infos = []
        for address in addresses:
            self._policy.check(target.host, address)  # the very address connected to
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            infos.append(
                (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, target.port))
            )
        sock = await aiohappyeyeballs.start_connection(
            infos, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY_S, interleave=1
        )
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _, conn = await loop.create_connection(
                lambda: Connection(target.origin, key[1]),
                sock=sock,
                ssl=context,
                server_hostname=target.host if target.tls else None,
            )
        except BaseException:
            sock.close()
            raise
        return conn

    async def _connect_via_proxy(
        self,
        proxy: Proxy,
        target: _Target,
        key: PoolKey,
        context: ssl.SSLContext | None,
        addresses: list[str],
    ) -> Connection:
        """Through the proxy to the first checked address it reaches (of two at most); the
        proxy unreachable fails the attempt."""
        loop = asyncio.get_running_loop()
        error: OSError | None = None
        for address in addresses[:2]:
            self._policy.check(target.host, address)  # the very address the proxy is given
            sock = await proxy.open()
            try:
                if target.tls:
                    await proxy.tunnel(sock, address, target.port)
                _, conn = await loop.create_connection(
                    lambda: Connection(target.origin, key[1]),
                    sock=sock,
                    ssl=context,
                    server_hostname=target.host if target.tls else None,
                )
            except ProxyError as exc:
                sock.close()
                error = exc
                continue
            except BaseException:
                sock.close()
                raise
            if not target.tls:
                conn.absolute = f"http://{authority(address, target.port)}".encode()
                conn.extra = proxy.authorization
            return conn
        assert error is not None
        raise error

    def _take_idle(self, key: PoolKey) -> Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to be stale
            if conn.reusable and not conn.expired(now):
                return conn
            conn.close()
        return None

    def _give_back(self, conn: Connection) -> None:
        self._idle.setdefault(conn.pool, []).append(conn)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_INTERVAL_S, self._sweep)

    def _sweep(self) -> None:
        """Close the connections past their idle limit, and the oldest beyond the limit."""
        self._sweeper = None
        now = time.monotonic()
        kept: list[Connection] = []
        for key, idle in list(self._idle.items()):
            for conn in idle:
                if not conn.reusable or conn.expired(now):
                    conn.close()
                else:
                    kept.append(conn)
            del self._idle[key]
        kept.sort(key=lambda c: c.idle_since)
        excess = max(0, len(kept) - self._max)
        for conn in kept[:excess]:
            conn.close()
        for conn in kept[excess:]:
            self._idle.setdefault(conn.pool, []).append(conn)
        if self._idle and not self._closed:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_INTERVAL_S, self._sweep)


def post_once(
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout_s: float,
    *,
    destinations: DestinationPolicy,
    user_agent: str,
    ssl_context: ssl.SSLContext | None = None,
    proxy: str | None = None,
    tls: TlsContexts | None = None,
    certificate: ClientCertificate | None = None,
) -> Response:
    """One POST from synchronous code (the CLI's challenge and test-fire), on the delivery
    client: the same destination checks, proxy and TLS settings as every delivery.
    TransportError as :meth:`HttpSender.post`."""

    async def go() -> Response:
        sender = HttpSender(
            max_connections=1,
            destinations=destinations,
            user_agent=user_agent,
            ssl_context=ssl_context,
            proxy=proxy,
            tls=tls,
        )
        try:
            return await sender.post(url, body, headers, timeout_s, certificate=certificate)
        finally:
            await sender.close()

    return asyncio.run(go())
