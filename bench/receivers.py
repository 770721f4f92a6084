"""The receivers the scenarios deliver to, each in its own process on 127.0.0.1.

* :class:`NginxReceiver`: the instant receiver when nginx is installed. ``return 200`` for
  every POST costs nginx a few microseconds, so the receiver is never what limits scenario A.
  Requests are counted with ``stub_status``.
* :class:`AiohttpReceiver` (``bench/receiver.py``): answers after a delay, can hang on chosen
  names, and records arrival latencies; the fallback instant receiver without nginx.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

import httpx

from bench.procstat import children
from worker.kafka.devbroker import terminate
from worker.kafka.processes import free_port

HERE = Path(__file__).resolve().parent
NGINX_CANDIDATES = ("nginx", "/usr/sbin/nginx")


class Receiver(Protocol):
    kind: str

    def url(self, name: str) -> str: ...
    def count(self) -> int: ...
    def reset(self) -> None: ...
    def pids(self) -> list[int]: ...
    def close(self) -> None: ...


def _wait_up(check: Any, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            check()
            return
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.1)


class AiohttpReceiver:
    kind = "aiohttp"

    def __init__(self, delay_ms: int = 0) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "receiver.py"), str(self.port), str(delay_ms)]
        )
        self._http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        _wait_up(lambda: self._http.get("/_stats", timeout=1), self.proc, "aiohttp receiver")

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def count(self) -> int:
        return int(self._http.get("/_stats").json()["count"])

    def latencies_ms(self) -> list[float]:
        return list(self._http.get("/_stats", params={"latencies": "1"}).json()["latencies_ms"])

    def first_arrivals(self) -> list[float]:
        """Each name's first arrival (Unix seconds) since the last reset."""
        return list(self._http.get("/_stats", params={"first": "1"}).json()["first"].values())

    def reset(self) -> None:
        self._http.post("/_reset")

    def hang(self, names: list[str]) -> None:
        """Never answer POSTs to these names (the connection stays open)."""
        self._http.post("/_hang", json={"names": names})

    def pids(self) -> list[int]:
        return [self.proc.pid]

    def close(self) -> None:
        self._http.close()
        terminate(self.proc)  # a receiver holding hung requests may linger: killed after 5 s


def nginx_binary() -> str | None:
    for name in NGINX_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


NGINX_CONF = """\
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = /_stats {{ stub_status; }}
        location / {{ return 200; }}
    }}
}}
"""


class NginxReceiver:
    """nginx in the foreground with a generated config in a temporary directory."""

    kind = "nginx"

    def __init__(self, binary: str) -> None:
        self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
        conf = self._dir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=self._dir, port=self.port))
        self.proc = subprocess.Popen(
            [binary, "-p", str(self._dir), "-c", str(conf), "-e", str(self._dir / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        self._polls = 0
        self._base = 0
        _wait_up(self._requests, self.proc, f"nginx (log: {self._dir / 'error.log'})")
        response = self._http.post("/probe", content=b'{"probe": true}')
        assert response.status_code == 200, f"nginx answered POST with {response.status_code}"
        self.reset()

    def _requests(self) -> int:
        """Requests served so far, less our own stub_status polls (each counts itself)."""
        text = self._http.get("/_stats").text
        self._polls += 1
        return int(text.splitlines()[2].split()[2]) - self._polls

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def count(self) -> int:
        return self._requests() - self._base

    def reset(self) -> None:
        self._base = self._requests()

    def pids(self) -> list[int]:
        return [self.proc.pid, *children(self.proc.pid)]

    def close(self) -> None:
        self._http.close()
        terminate(self.proc)  # a receiver holding hung requests may linger: killed after 5 s
        shutil.rmtree(self._dir, ignore_errors=True)


def instant_receiver(kind: str) -> Receiver:
    """``auto``: nginx when installed, else the aiohttp receiver."""
    binary = nginx_binary() if kind in ("auto", "nginx") else None
    if kind == "nginx" and binary is None:
        raise RuntimeError("--receiver nginx: nginx is not installed")
    if binary:
        return NginxReceiver(binary)
    return AiohttpReceiver(0)
