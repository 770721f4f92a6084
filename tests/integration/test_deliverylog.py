"""The delivery log's index, fed by the real worker delivering to real receivers: what it
indexes, resuming without duplicates, and rebuilding a lost or mismatched file."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from tests.support.kafka import produce_json
from tests.support.receiver import Receiver, Reply, always
from tests.support.subs import SubsWriter
from tests.support.worker import running
from worker.components import Codecs
from worker.config import Settings
from worker.deliverylog import DeliveryLog, LogFollower, index_path, open_log
from worker.dlq.store import mark_key
from worker.kafka.topics import Topics
from worker.model import RedriveMark
from worker.subscriptions.secrets import generate_secret

CODEC = Codecs.load().records


def eventually(check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            assert result, "not reached in time"
            return result
        time.sleep(0.2)


def snapshot(log: DeliveryLog, subs: list[str]) -> dict[str, Any]:
    return {
        sub: (
            log.attempts(sub, limit=500)[0],
            log.deliveries(sub, limit=500)[0],
            log.dead_letters(sub, limit=500)[0],
        )
        for sub in subs
    }


def reopen(settings: Settings) -> tuple[DeliveryLog, LogFollower]:
    log, follower = open_log(settings, CODEC)
    assert follower.wait_caught_up(30)
    return log, follower


def close(log: DeliveryLog, follower: LogFollower) -> None:
    follower.stop()
    log.store.close()


def flaky(n: int, body: bytes) -> Reply:
    """Fails the first request, then succeeds; answers a 2,000-character body."""
    return Reply(status=500 if n == 1 else 200, body=b"y" * 2000)


def test_the_index_follows_the_workers_attempts(settings_factory, tmp_path: Path) -> None:
    settings = settings_factory(retry_delays="100ms,100ms", api_data_dir=str(tmp_path / "api"))
    writer = SubsWriter(settings)
    with Receiver() as receiver:
        secret = generate_secret()
        flaky_url = receiver.endpoint("flaky", secret, flaky)
        gone_url = receiver.endpoint("gone", secret, always(400))
        flaky_sub = writer.create("acme", flaky_url, ["*"], secret=secret)
        gone_sub = writer.create("acme", gone_url, ["*"], secret=secret)
        log, follower = reopen(settings)  # empty topics: caught up at once, then following
        with running(settings):
            produce_json(
                settings.bootstrap_servers,
                settings.input_topics,
                [{"event": "a.created", "workspace": "acme", "id": f"l{i}"} for i in range(3)],
                key="acme",
            )
            eventually(lambda: len(log.attempts(flaky_sub.id)[0]) == 4)
            eventually(lambda: len(log.dead_letters(gone_sub.id)[0]) == 3)
    attempts, cursor = log.attempts(flaky_sub.id)
    assert cursor is None
    assert [(a["event_id"], a["attempt"], a["status"], a["outcome"]) for a in attempts] == [
        ("l2", 1, 200, "success"),
        ("l1", 1, 200, "success"),
        ("l0", 2, 200, "success"),
        ("l0", 1, 500, "retry"),
    ]
    assert all(a["response_body"] == "y" * 500 for a in attempts)
    assert all(a["latency_ms"] > 0 and a["error"] is None for a in attempts)
    assert all(a["started_at"].endswith("Z") and a["event"] == "a.created" for a in attempts)
    assert attempts[2]["webhook_id"] == attempts[3]["webhook_id"]
    deliveries = log.deliveries(flaky_sub.id)[0]
    assert [(d["event_id"], d["attempts"], d["last_status"], d["outcome"]) for d in deliveries] == [
        ("l2", 1, 200, "success"),
        ("l1", 1, 200, "success"),
        ("l0", 2, 200, "success"),
    ]
    letters = log.dead_letters(gone_sub.id)[0]
    assert [(d["event_id"], d["reason"], d["attempts"], d["last_status"]) for d in letters] == [
        (f"l{i}", "client_error", 1, 400) for i in (2, 1, 0)
    ]
    assert [a["outcome"] for a in log.attempts(gone_sub.id)[0]] == ["dead_letter"] * 3
    task = log.latest_task(gone_sub.id, letters[0]["webhook_id"])
    assert task is not None and CODEC.decode_task(task).event_id == "l2"

    # A redrive mark reaches the letter it names.
    partition, offset = (int(x) for x in letters[2]["position"].split(":"))
    mark = RedriveMark(partition, offset, letters[2]["webhook_id"], gone_sub.id, "rd_test", 1)
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    producer.produce(
        Topics.from_settings(settings).redrives,
        CODEC.encode_redrive(mark),
        mark_key(partition, offset),
    )
    assert producer.flush(10) == 0
    eventually(lambda: log.dead_letters(gone_sub.id)[0][2]["redriven_by"] == "rd_test")
    assert [t.redriven for t in log.dead_letter_tasks(gone_sub.id)] == [True, False, False]
    assert follower.lag() >= 0 and follower.skipped == 0 and follower.rebuilds == 0
    subs = [flaky_sub.id, gone_sub.id]
    before = snapshot(log, subs)
    close(log, follower)

    # Restarted on the same file: resumes where it stopped, nothing twice.
    log, follower = reopen(settings)
    assert snapshot(log, subs) == before and follower.rebuilds == 0
    close(log, follower)

    # The file deleted: rebuilt from the topics, the same rows.
    path = index_path(settings)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    log, follower = reopen(settings)
    assert snapshot(log, subs) == before and follower.rebuilds == 0
    close(log, follower)

    # Positions the topics do not hold (a recreated topic): rebuilt from scratch.
    for bogus in (
        "UPDATE positions SET next_offset = next_offset + 1000000",
        "UPDATE positions SET last_crc = last_crc + 1",
    ):
        with sqlite3.connect(path) as conn:
            conn.execute(bogus)
        conn.close()
        log, follower = reopen(settings)
        assert follower.rebuilds == 1
        assert snapshot(log, subs) == before
        close(log, follower)


def test_undecodable_records_are_skipped(settings_factory, tmp_path: Path) -> None:
    settings = settings_factory(api_data_dir=str(tmp_path / "api"))
    topics = Topics.from_settings(settings)
    for topic in (topics.attempts, topics.dlq, topics.redrives):
        produce_json(settings.bootstrap_servers, topic, [b"not avro"], key="sub_x", raw=True)
    log, follower = reopen(settings)
    try:
        eventually(lambda: follower.skipped == 3)
        assert log.attempts("sub_x") == ([], None)
        assert follower.ready()
    finally:
        close(log, follower)
