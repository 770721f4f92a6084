"""The jars of a local Apache Kafka broker, resolved once from Maven Central.

``kafka-broker.pom.xml`` (beside this module) pins the Kafka version. :func:`kafka_jars` runs
``mvn dependency:copy-dependencies`` into a cache outside the clone
(``$WEBHOOK_CACHE_DIR``, else ``$XDG_CACHE_HOME/webhook-worker``, else
``~/.cache/webhook-worker``), under a directory named by the pom's digest, so a fresh clone on
the same machine downloads nothing and a changed pom resolves anew. A lock file serialises
concurrent first runs (two test sessions); the directory is complete once its ``.complete``
marker exists. :func:`java_and_maven` tells whether this machine can run the broker at all.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from worker.errors import BackendError

__all__ = [
    "KAFKA_VERSION",
    "KafkaJarsError",
    "cache_dir",
    "java_and_maven",
    "java_major",
    "kafka_jars",
]

POM = Path(__file__).with_name("kafka-broker.pom.xml")
KAFKA_VERSION = re.search(r"<kafka.version>([^<]+)<", POM.read_text()).group(1)  # type: ignore[union-attr]
MIN_JAVA = 17
_RESOLVE_TIMEOUT_S = 900


class KafkaJarsError(BackendError):
    """The broker's jars could not be resolved; the message is one line."""


def cache_dir() -> Path:
    """Where downloads are kept between clones (created on use)."""
    explicit = os.environ.get("WEBHOOK_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "webhook-worker"


def java_major(java: str = "java") -> int | None:
    """The major version of ``java`` (17 for ``17.0.15``), or None when it does not run."""
    if shutil.which(java) is None:
        return None
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if match is None:
        return None
    major = int(match.group(1))
    # Java 8 and older call themselves "1.8".
    return int(match.group(2) or 0) if major == 1 else major


def java_and_maven() -> bool:
    """Java >= 17 and Maven are on PATH: the local broker can be Apache Kafka."""
    major = java_major()
    return major is not None and major >= MIN_JAVA and shutil.which("mvn") is not None


def kafka_jars(progress: Callable[[str], None] | None = None) -> Path:
    """The directory holding every jar of the pinned Kafka broker, resolved when missing.

    ``progress`` is told one line before a download starts (nothing when the cache is warm).
    """
    pom = POM.read_bytes()
    target = cache_dir() / f"kafka-{KAFKA_VERSION}-{hashlib.sha256(pom).hexdigest()[:12]}"
    if (target / ".complete").exists():
        return target
    if shutil.which("mvn") is None:
        raise KafkaJarsError("Maven (mvn) is not installed: it fetches the Kafka broker's jars")
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".complete").exists():  # another process resolved it meanwhile
            return target
        if progress is not None:
            progress(f"fetching Apache Kafka {KAFKA_VERSION}'s jars from Maven Central (once)...")
        _resolve(target)
    return target


def _resolve(target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = [
        "mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
        f"-DoutputDirectory={partial}",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=_RESOLVE_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise KafkaJarsError(
            f"Maven did not resolve Kafka {KAFKA_VERSION} within {_RESOLVE_TIMEOUT_S}s"
        ) from None
    jars = list(partial.glob("kafka_2.13-*.jar")) if partial.is_dir() else []
    if done.returncode != 0 or not jars:
        lines = [line for line in (done.stdout + done.stderr).splitlines() if "ERROR" in line]
        cause = lines[0].strip()[:300] if lines else f"exit status {done.returncode}"
        raise KafkaJarsError(f"Maven could not resolve Kafka {KAFKA_VERSION}: {cause}")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    (target / ".complete").write_text(KAFKA_VERSION + "\n")
