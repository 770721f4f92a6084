"""Debian's tinyproxy as a forward proxy on 127.0.0.1, for the delivery client's egress
proxy tests: started in the foreground with a config of its own, its log kept to see which
requests it forwarded."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

CONFIG = """Port {port}
Listen 127.0.0.1
Timeout 30
LogFile "{log}"
LogLevel Info
MaxClients 200
Allow 127.0.0.1
DisableViaHeader Yes
"""


def tinyproxy_binary() -> str | None:
    return shutil.which("tinyproxy") or next(
        (p for p in ("/usr/bin/tinyproxy", "/usr/sbin/tinyproxy") if Path(p).exists()), None
    )


class TinyProxy:
    """``with TinyProxy() as proxy: proxy.url ... proxy.requests()``; ``stop()`` takes it
    down (its port then refuses connections)."""

    def __init__(self) -> None:
        binary = tinyproxy_binary()
        assert binary is not None, "tinyproxy is not installed"
        self._dir = tempfile.TemporaryDirectory(prefix="tinyproxy-")
        self.log = Path(self._dir.name) / "tinyproxy.log"
        with socket.socket() as probe:  # a free port (tinyproxy cannot take port 0)
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = Path(self._dir.name) / "tinyproxy.conf"
        config.write_text(CONFIG.format(port=self.port, log=self.log))
        self._process = subprocess.Popen(
            [binary, "-d", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> TinyProxy:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("tinyproxy did not start")

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._dir.cleanup()

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            self._process.wait(10)

    def requests(self) -> list[str]:
        """The request lines it received (``CONNECT 127.0.0.1:443 HTTP/1.1``, ...)."""
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return [line.split("): ", 1)[1] for line in lines if "Request (file descriptor" in line]
