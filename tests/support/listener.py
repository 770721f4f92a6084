"""A bare TCP listener on 127.0.0.1 for servers that speak (or break) HTTP by hand."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable


class TcpListener:
    """Accepts connections in a thread of its own; each is counted, then handed to
    ``handle(conn)`` in a thread of its own (``handle`` closes it). ``close()`` stops it."""

    def __init__(self, handle: Callable[[socket.socket], None]) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0  # written by the accepting thread only
        self._handle = handle
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def close(self) -> None:
        self.sock.close()
