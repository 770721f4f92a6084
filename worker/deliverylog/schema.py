"""The index's tables, as SQL. ``SCHEMA_VERSION`` changes with them: a file of another
version is deleted and rebuilt from the topics (see :mod:`.store`)."""

from __future__ import annotations

__all__ = [
    "HOUR_MS",
    "INSERT_ATTEMPT",
    "INSERT_DEAD_LETTER",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SUB_KEY",
    "UPSERT_DELIVERY",
    "UPSERT_HOURLY",
]

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE positions (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    last_timestamp INTEGER NOT NULL,
    last_crc INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
) WITHOUT ROWID;

CREATE TABLE subscriptions (
    key INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE
);

CREATE TABLE attempts (
    id INTEGER PRIMARY KEY,
    sub INTEGER NOT NULL,
    workspace TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_key INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status INTEGER,
    outcome TEXT NOT NULL,
    error TEXT,
    latency_ms REAL NOT NULL,
    started_ms INTEGER NOT NULL,
    response_body TEXT NOT NULL
);
CREATE INDEX attempts_newest ON attempts (sub, started_ms, id, outcome);
CREATE INDEX attempts_by_event ON attempts (event_key);
CREATE INDEX attempts_by_time ON attempts (started_ms);

CREATE TABLE deliveries (
    sub INTEGER NOT NULL,
    webhook_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_status INTEGER,
    outcome TEXT NOT NULL,
    first_ms INTEGER NOT NULL,
    first_id INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    PRIMARY KEY (sub, webhook_id)
) WITHOUT ROWID;
CREATE INDEX deliveries_newest ON deliveries (sub, first_ms, first_id, outcome);

CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY,
    sub INTEGER NOT NULL,
    workspace TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    failed_ms INTEGER NOT NULL,
    task BLOB NOT NULL
);
CREATE INDEX dead_letters_newest ON dead_letters (sub, failed_ms, id);
CREATE INDEX dead_letters_by_delivery ON dead_letters (sub, webhook_id, id);

-- Attempts per subscription and hour (tests left out): the activity chart and the success
-- rate read a few hundred rows of this instead of every attempt.
CREATE TABLE hourly (
    sub INTEGER NOT NULL,
    hour INTEGER NOT NULL,
    successes INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    PRIMARY KEY (sub, hour)
) WITHOUT ROWID;

CREATE TABLE redrives (
    dead_letter INTEGER PRIMARY KEY,
    redrive_id TEXT NOT NULL,
    redriven_ms INTEGER NOT NULL
);
"""
# Rows name their subscription by id; the tables keep its small integer key.
SUB_KEY = "(SELECT key FROM subscriptions WHERE id = ?)"
INSERT_ATTEMPT = f"INSERT OR IGNORE INTO attempts VALUES (?,{SUB_KEY},?,?,?,?,?,?,?,?,?,?,?,?)"
INSERT_DEAD_LETTER = f"INSERT OR REPLACE INTO dead_letters VALUES (?,{SUB_KEY},?,?,?,?,?,?,?,?,?,?)"
UPSERT_DELIVERY = f"""
INSERT INTO deliveries VALUES ({SUB_KEY},?,?,?,?,?,?,?,?,?)
ON CONFLICT (sub, webhook_id) DO UPDATE SET
    attempts = attempts + excluded.attempts,
    last_status = CASE WHEN excluded.last_ms >= last_ms THEN excluded.last_status
                       ELSE last_status END,
    outcome = CASE WHEN excluded.last_ms >= last_ms THEN excluded.outcome ELSE outcome END,
    first_id = CASE WHEN excluded.first_ms < first_ms THEN excluded.first_id ELSE first_id END,
    first_ms = min(first_ms, excluded.first_ms),
    last_ms = max(last_ms, excluded.last_ms)
"""
HOUR_MS = 3_600_000
UPSERT_HOURLY = f"""
INSERT INTO hourly VALUES ({SUB_KEY},?,?,?)
ON CONFLICT (sub, hour) DO UPDATE SET
    successes = successes + excluded.successes,
    failures = failures + excluded.failures
"""
