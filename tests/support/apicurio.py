"""A real Schema Registry for the input tests: Apicurio Registry, its Confluent-compatible API
(``/apis/ccompat/v7``) on a free 127.0.0.1 port, H2 storage in a private directory.

Maven Central has Apicurio Registry's app only before Quarkus' build step, so
``apicurio/pom.xml`` (beside this module) finishes that build; :func:`registry_jar` runs it once
into the cache shared with the Kafka broker's jars (``~/.cache/webhook-worker``), under a
directory named by the version and the pom's digest, with a lock and a ``.complete`` marker
like :mod:`worker.kafka.kafkajars`, then starts it once to write the JVM's class-data archive
that later starts use. ``scripts/test`` builds it ahead (about a minute the first time);
``python -m tests.support.apicurio`` does the same and prints the jar's path.

The H2 database is a file rather than H2's memory: a :meth:`ApicurioRegistry.stop` then
:meth:`ApicurioRegistry.start` is an outage on the same port that keeps the schemas, as a
real registry's does.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import httpx

from worker.kafka.kafkajars import cache_dir, java_major
from worker.kafka.processes import free_port

__all__ = ["APICURIO_VERSION", "ApicurioRegistry", "registry_jar"]

POM = Path(__file__).with_name("apicurio") / "pom.xml"
APICURIO_VERSION = re.search(r"<apicurio.version>([^<]+)<", POM.read_text()).group(1)  # type: ignore[union-attr]
_RUNNER = "apicurio-registry-test-1-runner.jar"
_ARCHIVE = "classes.jsa"
# Part of the cache directory's name: changed when what the directory holds changes.
_LAYOUT = b"runner, lib, classes.jsa"
_BUILD_TIMEOUT_S = 1200


def registry_jar() -> Path:
    """The runnable jar of the pinned Apicurio Registry (its ``lib/`` beside it), built once."""
    pom = POM.read_bytes()
    digest = hashlib.sha256(pom + _LAYOUT).hexdigest()[:12]
    target = cache_dir() / f"apicurio-{APICURIO_VERSION}-{digest}"
    if (target / ".complete").exists():
        return target / _RUNNER
    if shutil.which("mvn") is None:
        raise RuntimeError("Maven (mvn) is needed to build Apicurio Registry for the tests")
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".complete").exists():  # else another process built it meanwhile
            print(
                f"webhook-worker: building Apicurio Registry {APICURIO_VERSION} (once)",
                file=sys.stderr,
            )
            _build(target, pom)
    return target / _RUNNER


def _build(target: Path, pom: bytes) -> None:
    work = target.with_name(target.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    (work / "pom.xml").write_bytes(pom)
    try:
        done = subprocess.run(
            ["mvn", "-q", "-B", "package"],
            cwd=work, capture_output=True, text=True, timeout=_BUILD_TIMEOUT_S,
            stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"Maven did not build Apicurio within {_BUILD_TIMEOUT_S}s") from None
    built = work / "target"
    if done.returncode != 0 or not (built / _RUNNER).exists():
        lines = [line for line in (done.stdout + done.stderr).splitlines() if "ERROR" in line]
        cause = lines[0].strip()[:300] if lines else f"exit status {done.returncode}"
        raise RuntimeError(f"Maven could not build Apicurio Registry: {cause}")
    # Only the runner and its lib/ run; the unpacked classes and the plain jar are dropped.
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    (built / _RUNNER).rename(target / _RUNNER)
    (built / "lib").rename(target / "lib")
    shutil.rmtree(work)
    _archive_classes(target / _RUNNER)
    (target / ".complete").write_text(APICURIO_VERSION + "\n")


def _archive_classes(jar: Path) -> None:
    """One start and stop that writes the JVM's class-data archive of the registry (AppCDS),
    which halves every later start (about 2 s instead of 4 s on an idle machine). Without it
    the registry starts all the same, so a failure here is not the build's."""
    with tempfile.TemporaryDirectory(prefix="webhook-apicurio-") as data:
        port = free_port()
        archive = [f"-XX:ArchiveClassesAtExit={jar.with_name(_ARCHIVE)}"]
        with open(Path(data) / "registry.log", "wb") as log:
            proc = _launch(jar, port, Path(data), log, archive)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and not _answers(port):
            time.sleep(0.2)
        proc.terminate()  # the archive is written as the JVM exits
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _launch(
    jar: Path, port: int, data: Path, log: IO[bytes], extra: list[str]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            "java",
            # A short-lived test server: C1 only and the serial collector start it sooner.
            "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx512m", *extra,
            f"-Dquarkus.http.port={port}", "-Dquarkus.http.host=127.0.0.1",
            f"-Dquarkus.datasource.jdbc.url=jdbc:h2:file:{data / 'registry'}",
            "-Dquarkus.datasource.jdbc.initial-size=1",
            "-Dquarkus.datasource.jdbc.min-size=1",
            "-jar", str(jar),
        ],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=data,
    )  # fmt: skip


def _answers(port: int) -> bool:
    try:
        url = f"http://127.0.0.1:{port}/apis/ccompat/v7/subjects"
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class ApicurioRegistry:
    """One Apicurio Registry process; ``url`` is its Confluent-compatible API."""

    def __init__(self) -> None:
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="webhook-apicurio-")
        self._proc: subprocess.Popen[bytes] | None = None
        self.started_in_s = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/apis/ccompat/v7"

    def start(self, timeout: float = 90) -> ApicurioRegistry:
        jar = registry_jar()
        major = java_major()
        assert major is not None and major >= 17, "Apicurio Registry needs Java 17 or later"
        data = Path(self._dir.name)
        archive = jar.with_name(_ARCHIVE)
        # -Xshare:auto (the default) runs without an archive this JVM cannot use.
        extra = [f"-XX:SharedArchiveFile={archive}"] if archive.exists() else []
        began = time.monotonic()
        with open(data / "registry.log", "ab") as log:
            self._proc = _launch(jar, self.port, data, log, extra)
        deadline = began + timeout
        while not _answers(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Apicurio Registry did not start:\n{self.output()[-3000:]}")
            time.sleep(0.2)
        self.started_in_s = time.monotonic() - began
        return self

    def output(self) -> str:
        path = Path(self._dir.name) / "registry.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Ends the process; the data stays for a later :meth:`start`."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> ApicurioRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    print(registry_jar())
