"""Debian's nginx as a webhook receiver on 127.0.0.1 (the delivery client's receiver zoo):
started in the foreground by any user (``-p`` a temporary directory holding its pid, logs and
temp paths; one process, no master), answering every POST 200 ``ok`` and closing connections
idle for ``keepalive_timeout`` (without advertising it: nginx sends ``Keep-Alive: timeout=``
only when given a second value).

``return 200`` reads the request body off the connection before the connection is kept
(nginx discards it: ``ngx_http_discard_request_body``), so a POST leaves the connection
reusable; the first request is checked to be answered 200 on a reused connection.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_body_buffer_size 64k;
    keepalive_timeout {keepalive};
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok"; }}
    }}
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/bin/nginx") if Path(p).exists()), None
    )


class Nginx:
    """``with Nginx(keepalive_timeout="5s") as nginx: nginx.port ...``"""

    def __init__(self, keepalive_timeout: str = "5s") -> None:
        binary = nginx_binary()
        assert binary is not None, "nginx is not installed"
        self._dir = tempfile.TemporaryDirectory(prefix="nginx-")
        directory = Path(self._dir.name)
        self.log = directory / "error.log"
        with socket.socket() as probe:  # a free port (nginx cannot report a port 0 it took)
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        config = directory / "nginx.conf"
        config.write_text(CONFIG.format(dir=directory, port=self.port, keepalive=keepalive_timeout))
        self._process = subprocess.Popen(
            [binary, "-p", str(directory), "-c", str(config), "-e", str(self.log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def __enter__(self) -> Nginx:
        deadline = time.monotonic() + 10
        while True:
            try:
                self._probe()
                return self
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError(f"nginx did not start (log: {self.log})") from None
                time.sleep(0.05)
            except BaseException:
                self.__exit__()
                raise

    def __exit__(self, *exc: object) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            self._process.wait(10)
        self._dir.cleanup()

    def _probe(self) -> None:
        """Two POSTs with a body on one connection, each answered 200."""
        request = b'POST /probe HTTP/1.1\r\nhost: x\r\ncontent-length: 7\r\n\r\n{"a":1}'
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            for _ in range(2):
                sock.sendall(request)
                data = b""
                while not data.endswith(b"\r\n\r\nok"):
                    chunk = sock.recv(4096)
                    if not chunk:
                        raise ConnectionResetError("nginx closed the connection")
                    data += chunk
                if not data.startswith(b"HTTP/1.1 200 "):
                    raise AssertionError(f"nginx answered {data[:40]!r}")
