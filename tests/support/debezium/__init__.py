"""Debezium for the input tests: a private PostgreSQL cluster (Debian's packages,
``wal_level=logical``) and Kafka Connect standalone with the Debezium PostgreSQL connector
(jars resolved by Maven from ``pom.xml`` beside this file, cached outside the clone), writing
to the tests' Apache Kafka broker."""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from worker.kafka.kafkajars import cache_dir
from worker.kafka.processes import free_port

POM = Path(__file__).with_name("pom.xml")


def connect_jars() -> Path:
    """The jars of Kafka Connect and the Debezium connector, resolved once."""
    pom = POM.read_bytes()
    target = cache_dir() / f"debezium-connect-{hashlib.sha256(pom).hexdigest()[:12]}"
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".complete").exists():
            return target
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run(
            ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
             f"-DoutputDirectory={partial}"],
            check=True, timeout=900, stdin=subprocess.DEVNULL, capture_output=True,
        )  # fmt: skip
        partial.rename(target)
        (target / ".complete").write_text("ok\n")
    return target


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class Postgres:
    """A throwaway cluster on 127.0.0.1 run by the ``postgres`` user (initdb refuses root)."""

    def __init__(self) -> None:
        binaries = postgres_bin()
        assert binaries is not None, "PostgreSQL is not installed (apt-get install postgresql)"
        self.bin = binaries
        self.dir = Path(tempfile.mkdtemp(prefix="webhook-pg-"))
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0

    def _run(self, *command: str, timeout: float = 60) -> str:
        full = ["runuser", "-u", "postgres", "--", *command] if self._as_postgres else command
        done = subprocess.run(
            full, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        assert done.returncode == 0, f"{command[0]}: {done.stderr[-2000:]}"
        return done.stdout

    def start(self) -> Postgres:
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        data = str(self.dir / "data")
        self._run(
            str(self.bin / "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        settings = (
            f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{self.dir}'\nwal_level = logical\n"
            "max_replication_slots = 8\nmax_wal_senders = 8\nfsync = off\n"
        )
        self._run("sh", "-c", f"printf '%s' \"{settings}\" >> {data}/postgresql.conf")
        self._run(str(self.bin / "pg_ctl"), "-D", data, "-l", str(self.dir / "log"), "-w", "start")
        self.sql("postgres", "CREATE DATABASE crm")
        return self

    def sql(self, database: str, statement: str) -> str:
        return self._run(
            "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
            "-v", "ON_ERROR_STOP=1", "-qAt", "-c", statement,
        )  # fmt: skip

    def stop(self) -> None:
        pg_ctl = [str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "stop"]
        if self._as_postgres:
            pg_ctl = ["runuser", "-u", "postgres", "--", *pg_ctl]
        subprocess.run(pg_ctl, capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def postgres_connector(port: int, topic_prefix: str, **extra: str) -> dict[str, str]:
    """A Debezium PostgreSQL connector's settings: the ``crm`` database's ``contacts`` table on
    127.0.0.1:``port``, over pgoutput with a slot and publication of its own, no snapshot."""
    slot = f"s{uuid.uuid4().hex[:10]}"
    return {
        "name": "crm",
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "tasks.max": "1",
        "database.hostname": "127.0.0.1",
        "database.port": str(port),
        "database.user": "postgres",
        "database.password": "unused",
        "database.dbname": "crm",
        "topic.prefix": topic_prefix,
        "plugin.name": "pgoutput",
        "slot.name": slot,
        "publication.name": slot,
        "publication.autocreate.mode": "filtered",
        "table.include.list": "public.contacts",
        "snapshot.mode": "no_data",
        **extra,
    }


class ConnectStandalone:
    """``ConnectStandalone`` with one Debezium PostgreSQL connector."""

    def __init__(self, bootstrap: str, connector: dict[str, str]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="webhook-connect-"))
        self.port = free_port()
        self.name = connector["name"]
        worker = {
            "bootstrap.servers": bootstrap,
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "key.converter.schemas.enable": "true",
            "value.converter.schemas.enable": "true",
            "offset.storage.file.filename": str(self.dir / "offsets"),
            "offset.flush.interval.ms": "1000",
            "listeners": f"http://127.0.0.1:{self.port}",
            "plugin.discovery": "only_scan",
        }
        self._write("worker.properties", worker)
        self._write("connector.properties", connector)
        self._log = open(self.dir / "connect.log", "wb")  # noqa: SIM115 - closed in stop()
        jars = connect_jars()
        self.proc = subprocess.Popen(
            ["java", "-Xmx512m", "-cp", f"{jars}/*",
             "org.apache.kafka.connect.cli.ConnectStandalone",
             str(self.dir / "worker.properties"), str(self.dir / "connector.properties")],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def _write(self, name: str, properties: dict[str, str]) -> None:
        (self.dir / name).write_text("".join(f"{k}={v}\n" for k, v in properties.items()))

    def wait_running(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"Connect exited: {self.output()[-3000:]}"
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{self.port}/connectors/{self.name}/status", timeout=2
                )
                if response.status_code != 200:  # Connect is starting, or the connector is
                    last = f"HTTP {response.status_code}"
                    time.sleep(0.5)
                    continue
                status = response.json()
                tasks = status.get("tasks", [])
                if tasks and all(t["state"] == "RUNNING" for t in tasks):
                    return
                if any(t["state"] == "FAILED" for t in tasks):
                    raise AssertionError(f"connector failed: {tasks[0].get('trace', '')[:2000]}")
                last = str(status)
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.5)
        raise AssertionError(f"connector not running in {timeout}s: {last} {self.output()[-2000:]}")

    def output(self) -> str:
        return (self.dir / "connect.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
