"""The index's SQLite file: schema, the writer's batches, positions, retention.

One file per cluster and topic prefix in ``WEBHOOK_API_DATA_DIR``, in WAL mode: one writer
(the follower thread) and any number of readers, each thread with its own connection, that
never wait for the writer. Everything in it can be rebuilt from the topics, so a file of
another schema version is deleted and rebuilt rather than migrated.

Rows are keyed by their Kafka position (``partition << 40 | offset``), and each batch writes
its rows and the next offset of every partition it read in one transaction: a restart resumes
exactly where the last committed batch ended, without duplicates or gaps. With a position,
the timestamp and CRC of the last record read are kept, so that the follower can tell, on
restart, whether the topic still holds that record (a recreated topic does not).

The "newest first" indexes carry the outcome, so that an outcome filter is checked in the
index without a per-outcome index to write (a rare outcome in a subscription with a long
history costs a scan of its index entries, a few milliseconds per 100,000).

``deliveries`` is maintained with ``attempts``, in the same transaction: one row per
(subscription, webhook-id) with the attempt count, the first and last attempt times, and the
status and outcome of the last attempt. Each batch's attempts are summed per delivery first
(one upsert per delivery, not per attempt: twice the write rate of a trigger).
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from worker.config import Settings
from worker.deliverylog.schema import (
    HOUR_MS,
    INSERT_ATTEMPT,
    INSERT_DEAD_LETTER,
    SCHEMA,
    SCHEMA_VERSION,
    SUB_KEY,
    UPSERT_DELIVERY,
    UPSERT_HOURLY,
)

__all__ = [
    "Batch",
    "Position",
    "Store",
    "event_key",
    "index_path",
    "row_id",
]

PARTITION_SHIFT = 40
# Pages of the index the writer keeps in memory: the bulk of the API's resident size
# (bench/api/scenario.py measures both it and the catch-up rate it buys).
WRITER_CACHE_MB = 64

_TABLES = (
    "attempts",
    "deliveries",
    "dead_letters",
    "hourly",
    "redrives",
    "positions",
    "subscriptions",
)
TEST_PREFIX = "msg_test_"  # the webhook ids of Send test: not in the activity counts

AttemptRow = tuple[
    int, str, str, str, str, int, str, int, int | None, str, str | None, float, int, str
]
DeadLetterRow = tuple[int, str, str, str, str, str, str, int, int | None, str | None, int, bytes]
MarkRow = tuple[int, str, int]


def event_key(event_id: str) -> int:
    """What ``attempts`` indexes an event id by: 8 bytes of its hash (a fifth of the id's size
    in the index; queries compare the id itself too)."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def row_id(partition: int, offset: int) -> int:
    """A record's Kafka position as one integer: the primary key of its row."""
    return (partition << PARTITION_SHIFT) | offset


@dataclass(frozen=True, slots=True)
class Position:
    """Where a partition's reading stands: the next offset, and what the last record was."""

    next_offset: int
    last_timestamp: int
    last_crc: int


@dataclass(slots=True)
class Batch:
    """What one transaction writes: rows, redrive marks (``None`` removes), new positions."""

    attempts: list[AttemptRow] = field(default_factory=list)
    dead_letters: list[DeadLetterRow] = field(default_factory=list)
    marks: dict[int, MarkRow | None] = field(default_factory=dict)
    positions: dict[tuple[str, int], Position] = field(default_factory=dict)
    # (subscription, webhook-id) of deliveries sent again: their attempts are numbered on.
    sent_again: set[tuple[str, str]] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.attempts or self.dead_letters or self.marks or self.positions)

    def rows(self) -> int:
        return len(self.attempts) + len(self.dead_letters) + len(self.marks)


@dataclass(slots=True)
class _Delivery:
    subscription_id: str
    webhook_id: str
    event_id: str
    event_type: str
    attempts: int
    last_status: int | None
    outcome: str
    first_ms: int
    first_id: int  # the first attempt's row: orders deliveries that began in one millisecond
    last_ms: int


def _deliveries(attempts: list[AttemptRow]) -> list[tuple[object, ...]]:
    """The attempts summed per delivery, as ``deliveries`` rows."""
    found: dict[tuple[str, str], _Delivery] = {}
    for (
        row,
        sub,
        _ws,
        webhook,
        event,
        _k,
        kind,
        _n,
        status,
        outcome,
        _e,
        _l,
        started,
        _b,
    ) in attempts:
        d = found.get((sub, webhook))
        if d is None:
            found[(sub, webhook)] = _Delivery(
                sub, webhook, event, kind, 1, status, outcome, started, row, started
            )
            continue
        d.attempts += 1
        if started >= d.last_ms:
            d.last_status, d.outcome, d.last_ms = status, outcome, started
        if started < d.first_ms:
            d.first_ms, d.first_id = started, row
    return [
        (
            d.subscription_id,
            d.webhook_id,
            d.event_id,
            d.event_type,
            d.attempts,
            d.last_status,
            d.outcome,
            d.first_ms,
            d.first_id,
            d.last_ms,
        )
        for d in found.values()
    ]


def _hourly(attempts: list[AttemptRow]) -> list[tuple[str, int, int, int]]:
    """The attempts counted per subscription and hour: successes, and the rest."""
    counts: dict[tuple[str, int], list[int]] = {}
    for row in attempts:
        if row[3].startswith(TEST_PREFIX):
            continue
        bucket = counts.setdefault((row[1], row[12] // HOUR_MS), [0, 0])
        bucket[0 if row[9] == "success" else 1] += 1
    return [(sub, hour, ok, failed) for (sub, hour), (ok, failed) in counts.items()]


def _numbered(
    conn: sqlite3.Connection, attempts: list[AttemptRow], sent_again: set[tuple[str, str]]
) -> list[AttemptRow]:
    """The attempts of deliveries sent again, numbered on: a re-sent or redriven delivery
    starts its retry schedule at attempt 1, but the log shows its attempts after the ones it
    already had (3, 4... rather than a second "attempt 1"). Only those deliveries are looked
    up (the others keep their records' numbers): a lookup per attempt cost an eighth of the
    writer's rate."""
    if not sent_again:
        return attempts
    counted: dict[tuple[str, str], int] = {}
    for key in sent_again:
        found = conn.execute(
            f"SELECT attempts FROM deliveries WHERE sub = {SUB_KEY} AND webhook_id = ?", key
        ).fetchone()
        counted[key] = found[0] if found else 0
    out: list[AttemptRow] = []
    for row in attempts:
        key = (row[1], row[3])
        before = counted.get(key)
        if before is None:
            out.append(row)
            continue
        counted[key] = before + 1
        out.append((*row[:7], max(row[7], before + 1), *row[8:]))
    return out


def index_path(settings: Settings) -> Path:
    """The file of this cluster and topic prefix in ``settings.api_data_dir``."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", settings.topic_prefix).strip("_") or "none"
    who = f"{settings.bootstrap_servers}|{settings.topic_prefix}".encode()
    digest = hashlib.sha256(who).hexdigest()[:10]
    return Path(settings.api_data_dir).expanduser() / f"deliverylog-{slug[:40]}-{digest}.sqlite3"


MAX_CLAIMS = 16


def _claim(path: Path) -> tuple[Path, IO[bytes]]:
    """``path``, or ``path.1``, ``path.2``... : the first file no other process writes.

    Two processes on one data directory (two ``api`` replicas on one host) must not both
    write one file: each would count the other's attempts again. Each claims a file with an
    exclusive lock on its ``.lock`` companion, held until :meth:`Store.close` or exit; a
    restarted process finds its old file free again and resumes it.
    """
    for n in range(MAX_CLAIMS):
        candidate = path if n == 0 else path.with_name(f"{path.name}.{n}")
        owner = open(f"{candidate}.lock", "ab")  # noqa: SIM115 - held for the store's life
        try:
            fcntl.flock(owner.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner.close()
            continue
        return candidate, owner
    raise OSError(f"{MAX_CLAIMS} processes already keep an index in {path.parent}")


class Store:
    """The SQLite file. :meth:`write`, :meth:`reset` and :meth:`expire` belong to one thread
    at a time (the follower); :meth:`reader` gives each thread its own read-only connection."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self._owner = _claim(path)
        self._writer = self._open_writer()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _open_writer(self) -> sqlite3.Connection:
        conn = self._connect()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            # Another schema: everything in it can be read again from the topics.
            conn.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            conn = self._connect()
            version = 0
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        # The indexes keyed by webhook-id and event id take writes all over their pages: keep
        # WRITER_CACHE_MB of them cached. No memory map: mapped pages of a file that grows to
        # GBs count in the API's resident memory, and the OS caches the file anyway.
        conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_MB * 1024}")
        # Checkpoint every 32 MB of WAL, not 4 MB: a page changed by many batches in a row (an
        # index's busy leaf) is copied into the file once.
        conn.execute("PRAGMA wal_autocheckpoint=8192")
        if version == 0:
            conn.executescript(f"BEGIN; {SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
        return conn

    def _connect(self) -> sqlite3.Connection:
        # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
        return sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)

    def reader(self) -> sqlite3.Connection:
        """This thread's read-only connection (opened on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # Used by this thread only; not checked so that close() may close it.
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA query_only=1")
            conn.execute("PRAGMA cache_size=-16384")
            self._local.conn = conn
            with self._lock:
                self._readers.append(conn)
        return conn

    def positions(self) -> dict[tuple[str, int], Position]:
        rows = self._writer.execute(
            "SELECT topic, partition, next_offset, last_timestamp, last_crc FROM positions"
        )
        return {(t, p): Position(n, ts, crc) for t, p, n, ts, crc in rows}

    def write(self, batch: Batch) -> None:
        """Write ``batch`` in one transaction (rows and positions together, or nothing).

        Its attempts must be new ones (the positions see to it): an attempt written twice is
        stored once, but counted twice in its delivery.
        """
        subs = {row[1] for row in batch.attempts} | {row[1] for row in batch.dead_letters}
        with self._transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO subscriptions (id) VALUES (?)", [(s,) for s in subs]
            )
            if batch.attempts:
                numbered = _numbered(conn, batch.attempts, batch.sent_again)
                conn.executemany(INSERT_ATTEMPT, numbered)
                conn.executemany(UPSERT_DELIVERY, _deliveries(batch.attempts))
                conn.executemany(UPSERT_HOURLY, _hourly(batch.attempts))
            if batch.dead_letters:
                conn.executemany(INSERT_DEAD_LETTER, batch.dead_letters)
            marks = [m for m in batch.marks.values() if m is not None]
            if marks:
                conn.executemany("INSERT OR REPLACE INTO redrives VALUES (?,?,?)", marks)
            unmarked = [(key,) for key, m in batch.marks.items() if m is None]
            if unmarked:
                conn.executemany("DELETE FROM redrives WHERE dead_letter = ?", unmarked)
            conn.executemany(
                "INSERT OR REPLACE INTO positions VALUES (?,?,?,?,?)",
                [
                    (topic, partition, p.next_offset, p.last_timestamp, p.last_crc)
                    for (topic, partition), p in batch.positions.items()
                ],
            )

    def reset(self) -> None:
        """Forget everything (before reading the topics again from the beginning)."""
        with self._transaction() as conn:
            for table in _TABLES:
                conn.execute(f"DELETE FROM {table}")

    def expire(self, before_ms: int) -> int:
        """Delete attempts, deliveries and dead letters older than ``before_ms``; the number of
        rows deleted. A delivery goes once its last attempt is older; its count keeps the
        attempts that went before it."""
        deleted = 0
        with self._transaction() as conn:
            for sql in (
                "DELETE FROM attempts WHERE started_ms < ?",
                "DELETE FROM deliveries WHERE last_ms < ?",
                "DELETE FROM dead_letters WHERE failed_ms < ?",
            ):
                deleted += conn.execute(sql, (before_ms,)).rowcount
            conn.execute("DELETE FROM hourly WHERE hour < ?", (before_ms // HOUR_MS,))
            conn.execute(
                "DELETE FROM redrives WHERE redriven_ms < ? AND dead_letter NOT IN "
                "(SELECT id FROM dead_letters)",
                (before_ms,),
            )
        return deleted

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        self._writer.close()
        self._owner.close()  # releases the claim
