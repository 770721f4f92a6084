"""Deliveries through a forward proxy (``WEBHOOK_EGRESS_PROXY``), the usual way to a static
egress address.

The worker resolves and checks the destination itself, as without a proxy, and names the
checked address to the proxy, never the host name, so the proxy cannot be steered elsewhere
by a lookup of its own: ``CONNECT address:port`` for https (TLS then runs inside the tunnel
with the URL's name for SNI and verification), the absolute form ``POST
http://address:port/path`` for http (the ``Host`` header keeps the name). When the proxy is
unreachable or refuses, the attempt fails: nothing ever goes out directly instead.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aiohappyeyeballs

__all__ = ["Proxy", "ProxyError", "authority"]

AddrInfo = tuple[int, int, int, str, tuple[str, int]]
RESPONSE_HEAD_CAP = 16 * 1024
ADDRESS_TTL_S = 10.0


class ProxyError(ConnectionError):
    """The proxy refused the tunnel or answered something else than HTTP."""


def authority(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@dataclass
class Proxy:
    """A forward proxy ``http://[user:password@]host:port``."""

    host: str
    port: int
    authorization: bytes = b""  # a Proxy-Authorization header line, or nothing
    _infos: tuple[float, list[AddrInfo]] | None = None

    @classmethod
    def from_url(cls, url: str) -> Proxy:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"not an http://host:port proxy URL: {parts.scheme}://...")
        line = b""
        if parts.username is not None:
            secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            token = base64.b64encode(secret.encode()).decode()
            line = f"proxy-authorization: Basic {token}\r\n".encode()
        return cls(parts.hostname, parts.port, line)

    async def open(self) -> socket.socket:
        """A TCP connection to the proxy (staggered over its addresses)."""
        now = time.monotonic()
        if self._infos is None or self._infos[0] <= now:
            loop = asyncio.get_running_loop()
            found = await loop.getaddrinfo(
                self.host, self.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
            infos: list[AddrInfo] = [
                (int(f), int(t), p, "", (str(a[0]), int(a[1]))) for f, t, p, _, a in found
            ]
            self._infos = (now + ADDRESS_TTL_S, infos)
        else:
            infos = self._infos[1]
        sock = await aiohappyeyeballs.start_connection(
            infos, happy_eyeballs_delay=0.25, interleave=1
        )
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    async def tunnel(self, sock: socket.socket, address: str, port: int) -> None:
        """``CONNECT address:port`` on ``sock``; ProxyError unless the proxy answers 2xx."""
        loop = asyncio.get_running_loop()
        target = authority(address, port)
        request = f"CONNECT {target} HTTP/1.1\r\nhost: {target}\r\n".encode()
        await loop.sock_sendall(sock, request + self.authorization + b"\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await loop.sock_recv(sock, 4096)
            if not chunk:
                raise ProxyError(f"the proxy closed the connection (CONNECT {target})")
            head += chunk
            if len(head) > RESPONSE_HEAD_CAP:
                raise ProxyError("the proxy's answer to CONNECT is too long")
        status_line, _, rest = head.partition(b"\r\n")
        _, _, after = rest.partition(b"\r\n\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ProxyError(f"the proxy answered CONNECT with {status_line[:100]!r}")
        if not 200 <= int(parts[1]) < 300:
            text = status_line.decode("latin-1", "replace")[:200]
            raise ProxyError(f"the proxy refused CONNECT {target}: {text}")
        if after:  # the destination speaks second in TLS: nothing can be there yet
            raise ProxyError("the proxy sent bytes after its answer to CONNECT")
