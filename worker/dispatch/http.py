"""The HTTP boundary of delivery: one POST, its response or a typed transport error.

aiohttp carries deliveries because its pool sustains many requests in flight far better than
httpx (issue 5's measurements); httpx stays in the CLI. Redirects are never followed and the
response body is read only up to a cap.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp
from yarl import URL

from worker.dispatch.destinations import (
    BlockedDestination,
    DestinationPolicy,
    GuardedResolver,
    guarded_socket_factory,
    literal_address,
)

__all__ = ["HttpSender", "Response", "TransportError"]

RESPONSE_READ_CAP = 64 * 1024
# Parsed destination URLs kept per process (a URL string always parses the same way; the
# address it resolves to is checked on every connect, not here).
URL_CACHE_SIZE = 100_000


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


class HttpSender:
    """A pooled aiohttp client for deliveries; create inside the running event loop.

    Every connection's peer address is checked against ``destinations`` as it is opened:
    names by the resolver, and every address (IP literals included) by the socket factory.
    """

    def __init__(
        self, *, max_connections: int, destinations: DestinationPolicy, user_agent: str
    ) -> None:
        connector = aiohttp.TCPConnector(
            limit=max_connections,
            limit_per_host=0,
            resolver=GuardedResolver(destinations),
            socket_factory=guarded_socket_factory(destinations),
            ttl_dns_cache=10,
            enable_cleanup_closed=True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"user-agent": user_agent},
            auto_decompress=False,
            skip_auto_headers=("accept-encoding",),
            # Endpoints get no cookies back: one subscription's answers never shape another's
            # requests (and the jar costs a lookup per request).
            cookie_jar=aiohttp.DummyCookieJar(),
            # No aiohttp timers: post() bounds the whole attempt with the subscription's own
            # timeout, and aiohttp's default (300 s) would only add a timer per request.
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=None),
        )
        self._urls: dict[str, URL] = {}

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> Response:
        start = time.perf_counter()
        try:
            target = self._urls.get(url)
            if target is None:
                if len(self._urls) >= URL_CACHE_SIZE:
                    self._urls.clear()
                target = self._urls[url] = _canonical_url(url)
            async with asyncio.timeout(timeout_s):
                async with self._session.post(
                    target, data=body, headers=headers, allow_redirects=False
                ) as resp:
                    content = await _read_capped(resp)
                    return Response(
                        resp.status,
                        content,
                        resp.headers.get("retry-after"),
                        time.perf_counter() - start,
                    )
        except TimeoutError:
            raise TransportError(
                "timeout", f"no response within {timeout_s:g}s", time.perf_counter() - start
            ) from None
        except aiohttp.ClientConnectorError as exc:
            kind = "blocked" if isinstance(exc.os_error, BlockedDestination) else "network"
            raise TransportError(kind, str(exc.os_error), time.perf_counter() - start) from None
        except BlockedDestination as exc:
            raise TransportError("blocked", str(exc), time.perf_counter() - start) from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            message = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
            raise TransportError("network", message, time.perf_counter() - start) from None

    async def close(self) -> None:
        await self._session.close()


def _canonical_url(url: str) -> URL:
    """``url`` with a legacy numeric IPv4 host (``2130706433``, ``0x7f.1``) spelled as the
    dotted address it names, so aiohttp connects to (and the guard checks) that address.
    BlockedDestination for a numeric host that is no address."""
    parsed = URL(url)
    host = parsed.raw_host
    if host is None:
        return parsed
    try:
        address = literal_address(host)
    except ValueError as exc:
        raise BlockedDestination(str(exc)) from None
    if address is None or address == host or ":" in address:
        return parsed
    return parsed.with_host(address)


async def _read_capped(resp: aiohttp.ClientResponse) -> bytes:
    """The body up to RESPONSE_READ_CAP bytes; the whole of it must arrive within the
    attempt's timeout (a body that dribbles in is a timeout, not a success)."""
    chunks: list[bytes] = []
    size = 0
    while size < RESPONSE_READ_CAP:
        chunk = await resp.content.read(RESPONSE_READ_CAP - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
