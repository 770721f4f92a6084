"""One kept-alive HTTP/1.1 connection of the delivery client: writes a request, parses its
response with httptools (llhttp) as it arrives, and knows whether it may be reused and for
how long.

Hostile responses are bounded here: the response head (status line and headers, interim
1xx responses included) may take at most :data:`MAX_HEAD_BYTES` bytes and
:data:`MAX_HEADERS` header lines; bytes beyond that are never handed to the parser (which
buffers a header line whole, growing it by concatenation), the request fails and the
connection is dropped. Each request gets a fresh parser, so nothing of one response can
leak into the next.
"""

from __future__ import annotations

import asyncio
import enum
import time
from typing import cast

import httptools

from worker.eventloop import answered
from worker.outbound.tls import ClientCertificate

__all__ = [
    "DEFAULT_IDLE_S",
    "KEEPALIVE_MARGIN_S",
    "MAX_HEADERS",
    "MAX_HEAD_BYTES",
    "RESPONSE_READ_CAP",
    "Connection",
    "ConnectionClosed",
    "Origin",
    "Result",
    "State",
]

RESPONSE_READ_CAP = 64 * 1024
MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
MAX_INTERIM = 10  # 1xx responses before the final one
# How long an idle connection is reused when the server gave no ``Keep-Alive: timeout=``.
# Servers that say nothing commonly close idle connections after 5 s (uvicorn, nginx set up
# with ``keepalive_timeout 5s``, Apache's default) and some after less (gunicorn: 2 s); 4 s
# stays under the common 5 s, and a close we still race is retried on a fresh connection
# (the client's one retry when a reused connection died before any byte of its response).
DEFAULT_IDLE_S = 4.0
# Taken off a server's own ``Keep-Alive: timeout=N``: the request must reach the server
# before its timer fires, across a round trip and the server's own timer granularity.
KEEPALIVE_MARGIN_S = 1.0
MAX_IDLE_S = 15.0  # never longer, whatever the server advertises

# status, body (capped), Retry-After, the response's header fields (for the delivery log)
Result = tuple[int, bytes, str | None, tuple[tuple[str, str], ...]]
Origin = tuple[str, str, int]  # scheme, host, port
PoolKey = tuple[Origin, ClientCertificate | None]


class State(enum.Enum):
    CONNECTING = "connecting"  # the transport is not there yet
    IDLE = "idle"  # ready for a request
    ACTIVE = "active"  # a request is out, its response not complete
    CLOSED = "closed"  # closed, closing, or not to be reused


class ConnectionClosed(ConnectionResetError):
    """The server closed the connection before the response was complete. ``answered``:
    a byte of the response had arrived (so the request was certainly read)."""

    def __init__(self, answered: bool, reset: bool) -> None:
        how = "reset" if reset else "closed"
        when = "in the middle of its response" if answered else "before answering"
        super().__init__(f"the server {how} the connection {when}")
        self.answered = answered


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: one request at a time. :meth:`send` gives the response as
    a :data:`Result`, or raises ConnectionClosed or ValueError (a malformed response)."""

    def __init__(self, origin: Origin, certificate: ClientCertificate | None = None) -> None:
        self.origin = origin
        # Where it is pooled when idle: its origin and the client certificate it presented.
        self.pool: PoolKey = (origin, certificate)
        self.state = State.CONNECTING
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] | None = None  # done once the connection is gone
        self.requests = 0  # requests sent on it
        self.idle_since = 0.0
        self.idle_limit = DEFAULT_IDLE_S  # reuse while idle for less than this
        self.absolute = b""  # "http://address:port" when requests go to a proxy in that form
        self.extra = b""  # header lines for the proxy (proxy-authorization)
        self._waiter: asyncio.Future[Result] | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._reset()

    def _reset(self) -> None:
        self._status = 0
        self._chunks: list[bytes] = []
        self._size = 0
        self._retry_after: str | None = None
        self._fields: list[tuple[str, str]] = []
        self._framed = False  # content-length or chunked: the body's end is known
        self._headers_done = False
        self._headers = 0

    @property
    def reusable(self) -> bool:
        return self.state is State.IDLE

    def expired(self, now: float) -> bool:
        return now - self.idle_since >= self.idle_limit

    def send(self, head: bytes, body: bytes) -> asyncio.Future[Result]:
        assert self.transport is not None and self.state is State.IDLE
        self.state = State.ACTIVE
        self.requests += 1
        self._parser = httptools.HttpResponseParser(self)
        self._reset()
        self._head_bytes = 0
        self._interim = 0
        self._answered = False
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.writelines((head, body))
        return self._waiter

    def close(self) -> None:
        self.state = State.CLOSED
        if self.transport is not None:
            self.transport.close()

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.lost = asyncio.get_running_loop().create_future()
        self.state = State.IDLE

    def data_received(self, data: bytes) -> None:
        if self.state is not State.ACTIVE:  # bytes nobody asked for: out of step
            self.close()
            return
        self._answered = True
        try:
            if not self._headers_done:  # never more than the head's cap to the parser
                room = MAX_HEAD_BYTES - self._head_bytes
                self._head_bytes += min(len(data), room)
                self._parser.feed_data(data[:room])
                if not self._headers_done:
                    if len(data) > room:
                        raise ValueError(f"response headers over {MAX_HEAD_BYTES} bytes")
                    return
                if len(data) <= room:
                    return
                data = data[room:]
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            self._abort(exc.__context__ or exc)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._abort(ValueError(f"malformed HTTP response: {exc}"))
        except ValueError as exc:
            self._abort(exc)

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        active = self.state is State.ACTIVE
        self.state = State.CLOSED
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(None)
        if not active:
            return
        if self._headers_done and not self._framed:  # a body delimited by the close
            self._complete()
        else:
            self._fail(ConnectionClosed(self._answered, reset=exc is not None))

    # -- httptools callbacks (an exception raised here fails the request) ------------------

    def on_message_begin(self) -> None:
        if self.state is not State.ACTIVE:  # a second response to one request: out of step
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers += 1
        if self._headers > MAX_HEADERS:
            raise ValueError(f"more than {MAX_HEADERS} response headers")
        lower = name.lower()
        self._fields.append((lower.decode("latin-1"), value.decode("latin-1")))
        if lower == b"retry-after":
            self._retry_after = value.decode("latin-1")
        elif lower == b"content-length":
            self._framed = True
        elif lower == b"transfer-encoding":
            # Chunked as the last coding is framed; any other is delimited by the close.
            self._framed = value.rsplit(b",", 1)[-1].strip().lower() == b"chunked"
        elif lower == b"keep-alive":
            self._keep_alive_hint(value)

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._headers_done = True
        if self._status == 101:
            raise ValueError("101 Switching Protocols to a request that asked for no upgrade")

    def on_body(self, body: bytes) -> None:
        room = RESPONSE_READ_CAP - self._size
        if room > 0:
            chunk = body[:room]
            self._chunks.append(chunk)
            self._size += len(chunk)
        if self._size >= RESPONSE_READ_CAP:  # enough: the rest is not read
            self._complete()
            self.close()

    def on_message_complete(self) -> None:
        if 100 <= self._status < 200:  # interim (100, 103): the final response follows
            self._interim += 1
            if self._interim > MAX_INTERIM:
                raise ValueError(f"more than {MAX_INTERIM} interim (1xx) responses")
            self._reset()
            return
        keep = self._parser.should_keep_alive()
        self._complete()
        if not keep:
            self.close()

    # -- outcome -------------------------------------------------------------------------

    def _keep_alive_hint(self, value: bytes) -> None:
        """``Keep-Alive: timeout=5, max=100``: reuse for ``timeout`` less the margin."""
        for part in value.split(b","):
            key, _, number = part.strip().partition(b"=")
            if key.strip().lower() == b"timeout":
                try:
                    seconds = float(number.strip())
                except ValueError:
                    return
                self.idle_limit = min(MAX_IDLE_S, max(0.0, seconds - KEEPALIVE_MARGIN_S))
                return

    def _complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        if self.state is State.ACTIVE:
            self.state = State.IDLE
            self.idle_since = time.monotonic()
        if waiter is not None and not waiter.done():
            answered().waiting += 1  # until the sender resumes (client.HttpSender._send)
            waiter.set_result(
                (self._status, b"".join(self._chunks), self._retry_after, tuple(self._fields))
            )

    def _fail(self, exc: BaseException) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            answered().waiting += 1
            waiter.set_exception(exc)

    def _abort(self, exc: BaseException) -> None:
        self._fail(exc)
        self.close()
