"""A TCP proxy on 127.0.0.1 that a test can cut: every live connection is dropped and new
ones are refused until :meth:`TcpProxy.restore`. With ``delay_s`` it also adds that much
round-trip time (a slow link), to data and closes alike.

Runs an asyncio server in its own thread. While cut, the listening socket stays bound (so
no other process can take the port) but every new connection is reset as soon as it is
accepted, which a client sees as a failed connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading


class TcpProxy:
    """``with TcpProxy(target_port) as proxy: ... proxy.cut(); ... proxy.restore()``."""

    def __init__(self, target_port: int, port: int = 0, delay_s: float = 0.0) -> None:
        self.target_port = target_port
        self.delay_s = delay_s  # added to each round trip (half each way), closes included
        self.port = port
        self.accepted = 0  # connections forwarded (not counting refused ones)
        self.refused = 0
        self._cut = False
        self._live: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="tcp-proxy", daemon=True)

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        assert self._ready.wait(10), "proxy did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
            self._abort_all()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def cut(self) -> None:
        """Reset every live connection and refuse new ones."""

        async def go() -> None:
            self._cut = True
            self._abort_all()

        asyncio.run_coroutine_threadsafe(go(), self._loop).result(10)

    def restore(self) -> None:
        """Forward new connections again."""

        async def go() -> None:
            self._cut = False

        asyncio.run_coroutine_threadsafe(go(), self._loop).result(10)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()
        self._loop.close()

    def _abort_all(self) -> None:
        for writer in list(self._live):
            _reset(writer)
        self._live.clear()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self._cut:
            self.refused += 1
            _reset(client_w)
            return
        try:
            upstream_r, upstream_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            _reset(client_w)
            return
        if self._cut:  # cut while we were connecting upstream
            _reset(client_w)
            _reset(upstream_w)
            return
        self.accepted += 1
        self._live.update((client_w, upstream_w))
        await asyncio.gather(
            self._pipe(client_r, upstream_w, client_w), self._pipe(upstream_r, client_w, upstream_w)
        )

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        source: asyncio.StreamWriter,
    ) -> None:
        try:
            while data := await reader.read(65536):
                if self.delay_s:
                    await asyncio.sleep(self.delay_s / 2)
                writer.write(data)
                await writer.drain()
            if self.delay_s:  # the close travels as slowly as the data
                await asyncio.sleep(self.delay_s / 2)
        except (ConnectionError, OSError):
            pass
        finally:
            # One side ended: end both, so the other pipe stops too.
            for w in (writer, source):
                self._live.discard(w)
                with contextlib.suppress(Exception):
                    w.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a dropped link or a refusing peer looks to a client."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
