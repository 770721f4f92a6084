"""A local Apache Kafka cluster in KRaft combined mode: one JVM a node, each both broker and
controller, on free 127.0.0.1 ports, for ``webhook-worker dev``, the tests and the benchmark.

The jars come from :mod:`worker.kafka.kafkajars` (Maven Central, cached). Each node has its own
directory under the cluster's work directory: ``server.properties``, ``data/`` (formatted once
with the cluster id, so a restarted node finds its log) and ``broker.log``, which a failing
start names. ``KafkaNode.stop()`` is a controlled shutdown, ``kill()`` a ``kill -9``;
``KafkaCluster.restart(node)`` starts it again on the same ports and log directory and waits
until it is registered. Startup waits until every node answers a metadata request as a
registered broker.

Optional: ``scram_users`` and ``tls`` add a ``SASL_SSL`` listener (SCRAM-SHA-512, the users
created when the log directories are formatted) beside the plaintext one.

A node started from the main thread gets SIGTERM when that thread dies (``PR_SET_PDEATHSIG``),
so a killed test session or ``dev`` leaves no JVM behind; nodes started from other threads do
not (Linux would stop them when that thread ends).
"""

from __future__ import annotations

import base64
import dataclasses
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from cryptography.hazmat.primitives import serialization

from worker.errors import BackendError
from worker.kafka.kafkajars import KAFKA_VERSION, kafka_jars
from worker.kafka.processes import free_port, spawn_broker, terminate

__all__ = ["KAFKA_VERSION", "KafkaBrokerError", "KafkaCluster", "KafkaNode", "TlsFiles"]

START_TIMEOUT_S = 120.0
STOP_GRACE_S = 30.0

_LOG4J = """\
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
logger.state.name = state.change.logger
logger.state.level = WARN
"""


class KafkaBrokerError(BackendError):
    """A node could not be formatted, started or reached; the message is one line."""


@dataclasses.dataclass(frozen=True)
class TlsFiles:
    """The server's PEM key and certificate chain, one file each."""

    cert_chain: Path
    private_key: Path


def _cluster_id() -> str:
    """A Kafka ``Uuid`` string (url-safe base64 of 16 random bytes, not starting with '-')."""
    while True:
        value = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        if not value.startswith("-"):
            return value


class KafkaNode:
    """One combined broker+controller JVM; :class:`KafkaCluster` builds and starts them."""

    def __init__(self, cluster: KafkaCluster, node_id: int, workdir: Path) -> None:
        self.cluster = cluster
        self.node_id = node_id
        self.dir = workdir / f"node-{node_id}"
        self.data_dir = self.dir / "data"
        self.log_path = self.dir / "broker.log"
        self.port = free_port()
        self.controller_port = free_port()
        self.sasl_port = free_port() if cluster.sasl else None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def properties(self, voters: str) -> dict[str, str]:
        listeners = [f"PLAINTEXT://127.0.0.1:{self.port}"]
        protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
        if self.sasl_port is not None:
            listeners.append(f"SASL_SSL://127.0.0.1:{self.sasl_port}")
            protocols.append("SASL_SSL:SASL_SSL")
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": voters,
            "listeners": ",".join([*listeners, f"CONTROLLER://127.0.0.1:{self.controller_port}"]),
            "advertised.listeners": ",".join(listeners),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": ",".join(protocols),
            "log.dirs": str(self.data_dir),
        }
        return {**props, **self.cluster.broker_config()}

    def write_config(self, voters: str) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / "server.properties"
        lines = [f"{key}={value}" for key, value in self.properties(voters).items()]
        path.write_text("\n".join(lines) + "\n")
        return path

    def format_command(self, cluster_id: str) -> list[str]:
        command = [*self.cluster.java_command(heap_mb=256), "kafka.tools.StorageTool", "format"]
        command += ["-t", cluster_id, "-c", str(self.dir / "server.properties")]
        for user, password in self.cluster.scram_users.items():
            command += ["--add-scram", f"SCRAM-SHA-512=[name={user},password={password}]"]
        return command

    def start(self) -> None:
        """Spawn the JVM (returns at once; :meth:`KafkaCluster.wait_for` waits)."""
        if self.running:
            return
        command = [*self.cluster.java_command(), "kafka.Kafka", str(self.dir / "server.properties")]
        try:
            self._proc = spawn_broker(command, self.log_path, self.dir)
        except OSError as exc:
            why = f"cannot run java for Kafka node {self.node_id}: {exc}"
            raise KafkaBrokerError(why) from None

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Controlled shutdown (SIGTERM), SIGKILL after ``grace_s``; idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            terminate(proc, grace_s)

    def kill(self) -> None:
        """``kill -9``: no controlled shutdown, no flush."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def exit_status(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def failure(self) -> str:
        """The first error of the log, for a one-line error."""
        return _first_error(self.log_path)


class KafkaCluster:
    """``with KafkaCluster(nodes=3) as cluster: cluster.bootstrap`` -- KRaft nodes, stopped on
    exit (the work directory removed unless a start failed)."""

    def __init__(
        self,
        nodes: int = 1,
        *,
        heap_mb: int = 512,
        config: Mapping[str, str] | None = None,
        scram_users: Mapping[str, str] | None = None,
        tls: TlsFiles | None = None,
        start_timeout: float = START_TIMEOUT_S,
    ) -> None:
        if nodes < 1:
            raise ValueError("a cluster has at least one node")
        if bool(scram_users) != (tls is not None):
            raise ValueError("SASL_SSL needs both scram_users and tls")
        self.version = KAFKA_VERSION
        self.heap_mb = heap_mb
        self.config = dict(config or {})
        self.scram_users = dict(scram_users or {})
        self.tls = tls
        self.start_timeout = start_timeout
        self.workdir = Path(tempfile.mkdtemp(prefix="webhook-worker-kafka-"))
        self.cluster_id = _cluster_id()
        self._libs: Path | None = None
        self._keep = False
        self.nodes = [KafkaNode(self, node_id, self.workdir) for node_id in range(1, nodes + 1)]

    @property
    def sasl(self) -> bool:
        return self.tls is not None

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    @property
    def sasl_bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{node.sasl_port}" for node in self.nodes)

    def node(self, node_id: int) -> KafkaNode:
        return self.nodes[node_id - 1]

    def broker_config(self) -> dict[str, str]:
        """Broker settings for fast tests, then the caller's ``config`` over them."""
        count = len(self.nodes)
        replicas = str(min(3, count))
        isr = str(min(2, count))
        props = {
            "group.initial.rebalance.delay.ms": "0",
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": "5",
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": isr,
            "transaction.state.log.num.partitions": "5",
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": isr,
            "default.replication.factor": replicas,
            "log.cleaner.backoff.ms": "100",
            "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
            "log.segment.delete.delay.ms": "1000",
            "unclean.leader.election.enable": "false",
        }
        if self.tls is not None:
            props |= {
                "sasl.enabled.mechanisms": "SCRAM-SHA-512",
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                ),
                "ssl.keystore.type": "PEM",
                "ssl.keystore.certificate.chain": _pem_value(self.tls.cert_chain),
                "ssl.keystore.key": _pkcs8_value(self.tls.private_key),
            }
        return {**props, **self.config}

    def java_command(self, heap_mb: int | None = None) -> list[str]:
        heap = f"{heap_mb or self.heap_mb}m"
        log4j = self.workdir / "log4j2.properties"
        return [
            "java", f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{self._libs}/*",
        ]  # fmt: skip

    def start(self, progress: Callable[[str], None] | None = None) -> KafkaCluster:
        """Resolve the jars, format every node, start them and wait until all are brokers.
        Idempotent: ``with cluster.start(progress):`` starts once."""
        if self._libs is not None:
            return self
        try:
            self._libs = kafka_jars(progress)
            (self.workdir / "log4j2.properties").write_text(_LOG4J)
            voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
            for node in self.nodes:
                node.write_config(voters)
            self._format()
            for node in self.nodes:
                node.start()
            self.wait_for([node.node_id for node in self.nodes])
        except BaseException:
            self._keep = True
            self.stop()
            raise
        return self

    def _format(self) -> None:
        """Format every node's log directory (in parallel), the output in ``format.log``."""
        formats = []
        for node in self.nodes:
            with open(node.dir / "format.log", "wb") as log:
                command = node.format_command(self.cluster_id)
                proc = subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                )
            formats.append((node, proc))
        for node, proc in formats:
            if proc.wait(timeout=120) != 0:
                path = node.dir / "format.log"
                raise KafkaBrokerError(
                    f"formatting Kafka node {node.node_id} failed{_first_error(path)}; log: {path}"
                )

    def wait_for(self, node_ids: list[int], timeout: float | None = None) -> None:
        """Wait until each of ``node_ids`` answers a metadata request on its own port and is
        a registered broker in it (after a ``kill -9`` the others still list the dead node
        until its session times out, so the cluster's word alone proves nothing)."""
        deadline = time.monotonic() + (timeout or self.start_timeout)
        waiting = set(node_ids)
        while waiting and time.monotonic() < deadline:
            for node_id in sorted(waiting):
                node = self.node(node_id)
                status = node.exit_status()
                if status is not None:
                    raise KafkaBrokerError(
                        f"Kafka node {node_id} exited with status {status}{node.failure()};"
                        f" log: {node.log_path}"
                    )
                if _answers(node):
                    waiting.discard(node_id)
            if waiting:
                time.sleep(0.2)
        if waiting:
            raise KafkaBrokerError(
                f"Kafka node(s) {sorted(waiting)} did not register within "
                f"{timeout or self.start_timeout:.0f}s; log: {self.node(min(waiting)).log_path}"
            )

    def restart(self, node: KafkaNode, timeout: float | None = None) -> None:
        """Start a stopped or killed node again (same ports and log dir) and wait for it."""
        node.start()
        self.wait_for([node.node_id], timeout)

    def stop(self) -> None:
        """Stop every node (in parallel: a lone survivor waits on its peers to shut down)."""
        threads = [threading.Thread(target=node.stop, args=(10.0,)) for node in self.nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if not self._keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> KafkaCluster:
        return self.start()  # a no-op when started already

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _first_error(path: Path) -> str:
    """`` (<the first ERROR or exception line of path, else its last line>)``, or nothing."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    errors = [line for line in lines if "ERROR" in line or "Exception" in line]
    line = (errors or lines or [""])[0 if errors else -1].strip()
    return f" ({line[:240]})" if line else ""


def _answers(node: KafkaNode) -> bool:
    # A fresh client each time: its first metadata request can only go to this node.
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{node.port}", "log_level": "0"})
    try:
        return node.node_id in admin.list_topics(timeout=2).brokers
    except KafkaException:
        return False


def _pem_value(path: Path) -> str:
    """A PEM file as one properties value (newlines escaped)."""
    return path.read_text().strip().replace("\n", "\\n")


def _pkcs8_value(path: Path) -> str:
    """The private key as an unencrypted PKCS#8 PEM properties value: Kafka's PEM keystore
    reads only ``BEGIN PRIVATE KEY``, and most tools (openssl, trustme) write SEC1 or PKCS#1."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem.decode().strip().replace("\n", "\\n")
