"""The delivery log's SQLite index: what a batch writes and what each query answers."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from worker.components import Codecs
from worker.config import Settings
from worker.deliverylog import BadCursor, DeliveryLog, Store, index_path
from worker.deliverylog.rows import attempt_row, dead_letter_row, mark_row
from worker.deliverylog.schema import SCHEMA_VERSION
from worker.deliverylog.store import Batch, Position
from worker.model import Attempt, DeadLetter, DeliveryTask, RedriveMark

CODEC = Codecs.load().records
T0 = 1_780_000_000_000  # 2026-05-28T20:26:40Z


def attempt(
    n: int,
    *,
    sub: str = "sub_a",
    webhook: str | None = None,
    event: str | None = None,
    number: int = 1,
    status: int | None = 200,
    outcome: str = "success",
    started_ms: int | None = None,
    body: str = "ok",
    error: str | None = None,
) -> Attempt:
    return Attempt(
        delivery_id=webhook or f"msg_{n}",
        subscription_id=sub,
        workspace="acme",
        event_id=event or f"evt_{n}",
        event_type="contact.created",
        attempt=number,
        started_ms=T0 + n * 1000 if started_ms is None else started_ms,
        latency_ms=12.5,
        url="https://example.com/hook",
        outcome=outcome,
        status=status,
        error=error,
        request_body='{"id": "x"}',
        response_body=body,
    )


def letter(n: int, *, sub: str = "sub_a", reason: str = "retries_exhausted") -> DeadLetter:
    task = DeliveryTask(
        delivery_id=f"msg_{n}",
        subscription_id=sub,
        workspace="acme",
        event_id=f"evt_{n}",
        event_type="contact.created",
        body=b'{"id": "evt_%d"}' % n,
        attempt=3,
    )
    return DeadLetter(
        task, reason, attempts=3, failed_ms=T0 + n * 1000, last_status=503, last_error=None
    )


@pytest.fixture
def store(tmp_path: Path):
    store = Store(tmp_path / "log.sqlite3")
    yield store
    store.close()


def write_attempts(store: Store, attempts: list[Attempt], partition: int = 0, start: int = 0):
    batch = Batch(attempts=[attempt_row(partition, start + i, a) for i, a in enumerate(attempts)])
    batch.sent_again = {(a.subscription_id, a.delivery_id) for a in attempts if a.sent_again}
    batch.positions[("attempts", partition)] = Position(start + len(attempts), 1, 2)
    store.write(batch)


def all_pages(query, **kwargs) -> list[dict]:
    rows, cursor = query(**kwargs)
    pages = [rows]
    while cursor is not None:
        rows, cursor = query(**kwargs, cursor=cursor)
        pages.append(rows)
    assert all(pages[:-1]), "only the last page may be short"
    return [row for page in pages for row in page]


def test_attempts_newest_first_with_the_api_fields(store: Store) -> None:
    write_attempts(
        store,
        [
            attempt(1, status=500, outcome="retry", body="x" * 900),
            attempt(2, status=None, outcome="dead_letter", error="connection refused"),
            attempt(3, sub="sub_b"),
        ],
    )
    rows, cursor = DeliveryLog(store).attempts("sub_a")
    assert cursor is None
    assert rows == [
        {
            "webhook_id": "msg_2",
            "event_id": "evt_2",
            "event": "contact.created",
            "attempt": 1,
            "status": None,
            "outcome": "dead_letter",
            "error": "connection refused",
            "latency_ms": 12.5,
            "started_at": "2026-05-28T20:26:42.000Z",
            "response_body": "ok",
        },
        {
            "webhook_id": "msg_1",
            "event_id": "evt_1",
            "event": "contact.created",
            "attempt": 1,
            "status": 500,
            "outcome": "retry",
            "error": None,
            "latency_ms": 12.5,
            "started_at": "2026-05-28T20:26:41.000Z",
            "response_body": "x" * 500,
        },
    ]
    assert store.positions() == {("attempts", 0): Position(3, 1, 2)}


def test_attempt_filters(store: Store) -> None:
    outcomes = ["retry", "success", "dead_letter"]
    write_attempts(store, [attempt(n, outcome=outcomes[n % 3]) for n in range(30)])
    log = DeliveryLog(store)

    def ids(**filters) -> list[str]:
        return [r["event_id"] for r in all_pages(log.attempts, subscription_id="sub_a", **filters)]

    assert ids(outcome="retry") == [f"evt_{n}" for n in range(27, -1, -3)]
    assert ids(event_id="evt_7") == ["evt_7"]
    assert ids(event_id="evt_7", outcome="retry") == []
    assert ids(since_ms=T0 + 25_000) == [f"evt_{n}" for n in range(29, 24, -1)]
    assert ids(until_ms=T0 + 3_000) == ["evt_2", "evt_1", "evt_0"]
    assert ids(since_ms=T0 + 10_000, until_ms=T0 + 12_000) == ["evt_11", "evt_10"]
    assert ids(outcome="nope") == []
    assert log.attempts("sub_other") == ([], None)


def test_pages_have_no_duplicates_or_gaps(store: Store) -> None:
    # Many attempts share a start time (the page boundary falls inside such runs), and rows
    # arrive over several partitions and batches.
    attempts = [attempt(n, started_ms=T0 + (n // 7) * 10) for n in range(503)]
    for partition in range(3):
        write_attempts(store, attempts[partition::3], partition=partition)
    log = DeliveryLog(store)
    for limit in (1, 7, 50, 500):
        got = [r["event_id"] for r in all_pages(log.attempts, subscription_id="sub_a", limit=limit)]
        assert len(got) == len(set(got)) == 503
        times = [T0 + (int(e.split("_")[1]) // 7) * 10 for e in got]
        assert times == sorted(times, reverse=True)
    retries = all_pages(log.attempts, subscription_id="sub_a", outcome="success", limit=13)
    assert len(retries) == 503


def test_a_page_boundary_is_stable_under_new_writes(store: Store) -> None:
    write_attempts(store, [attempt(n) for n in range(10)])
    log = DeliveryLog(store)
    first, cursor = log.attempts("sub_a", limit=4)
    write_attempts(store, [attempt(n) for n in range(10, 20)], start=10)
    second, _ = log.attempts("sub_a", limit=4, cursor=cursor)
    assert [r["event_id"] for r in first + second] == [f"evt_{n}" for n in range(9, 1, -1)]


def test_bad_cursors(store: Store) -> None:
    write_attempts(store, [attempt(n, outcome="retry") for n in range(5)])
    log = DeliveryLog(store)
    _, cursor = log.attempts("sub_a", outcome="retry", limit=2)
    assert cursor is not None
    log.attempts("sub_a", outcome="retry", limit=3, cursor=cursor)  # the limit may change
    for other in (
        {"subscription_id": "sub_b", "outcome": "retry"},
        {"subscription_id": "sub_a"},
        {"subscription_id": "sub_a", "outcome": "success"},
        {"subscription_id": "sub_a", "outcome": "retry", "event_id": "evt_1"},
        {"subscription_id": "sub_a", "outcome": "retry", "since_ms": T0},
    ):
        with pytest.raises(BadCursor, match="other filters"):
            log.attempts(**other, cursor=cursor)
    with pytest.raises(BadCursor):
        log.deliveries("sub_a", outcome="retry", cursor=cursor)
    for garbage in ("", "x", "!!!", cursor[:-3], cursor + "AAAA", "bnVsbA", "WzEsMiwzXQ"):
        with pytest.raises(BadCursor):
            log.attempts("sub_a", outcome="retry", cursor=garbage)
    with pytest.raises(ValueError, match="limit"):
        log.attempts("sub_a", limit=501)


def test_later_pages_keep_the_first_pages_time_bounds(store: Store) -> None:
    write_attempts(store, [attempt(n) for n in range(10)])
    log = DeliveryLog(store)
    first, cursor = log.attempts("sub_a", since_ms=T0 + 4_000, limit=3)
    # A duration ("since=2h") becomes a later time on the next request; the listing keeps
    # the bound it started with.
    rest, end = log.attempts("sub_a", since_ms=T0 + 8_000, limit=3, cursor=cursor)
    assert end is None
    assert [r["event_id"] for r in first + rest] == [f"evt_{n}" for n in range(9, 3, -1)]


def test_deliveries_aggregate_their_attempts(store: Store) -> None:
    write_attempts(
        store,
        [
            attempt(1, webhook="msg_a", event="evt_a", status=500, outcome="retry"),
            attempt(2, webhook="msg_b", event="evt_b"),
            attempt(3, webhook="msg_a", event="evt_a", number=2, status=None, outcome="retry"),
            attempt(4, webhook="msg_c", event="evt_c", status=410, outcome="dead_letter"),
        ],
    )
    write_attempts(
        store,
        [attempt(5, webhook="msg_a", event="evt_a", number=3, status=200)],
        start=4,
    )
    log = DeliveryLog(store)
    rows, cursor = log.deliveries("sub_a")
    assert cursor is None
    assert rows == [
        {
            "webhook_id": "msg_c",
            "event_id": "evt_c",
            "event": "contact.created",
            "attempts": 1,
            "last_status": 410,
            "outcome": "dead_letter",
            "first_attempt_at": "2026-05-28T20:26:44.000Z",
            "last_attempt_at": "2026-05-28T20:26:44.000Z",
        },
        {
            "webhook_id": "msg_b",
            "event_id": "evt_b",
            "event": "contact.created",
            "attempts": 1,
            "last_status": 200,
            "outcome": "success",
            "first_attempt_at": "2026-05-28T20:26:42.000Z",
            "last_attempt_at": "2026-05-28T20:26:42.000Z",
        },
        {
            "webhook_id": "msg_a",
            "event_id": "evt_a",
            "event": "contact.created",
            "attempts": 3,
            "last_status": 200,
            "outcome": "success",
            "first_attempt_at": "2026-05-28T20:26:41.000Z",
            "last_attempt_at": "2026-05-28T20:26:45.000Z",
        },
    ]
    assert [r["webhook_id"] for r in log.deliveries("sub_a", outcome="success")[0]] == [
        "msg_b",
        "msg_a",
    ]
    assert [r["webhook_id"] for r in log.deliveries("sub_a", since_ms=T0 + 2_000)[0]] == [
        "msg_c",
        "msg_b",
    ]
    paged = all_pages(log.deliveries, subscription_id="sub_a", limit=1)
    assert [r["webhook_id"] for r in paged] == ["msg_c", "msg_b", "msg_a"]


def test_deliveries_begun_in_one_millisecond_are_in_topic_order(store: Store) -> None:
    write_attempts(store, [attempt(n, started_ms=T0) for n in range(30)])
    log = DeliveryLog(store)
    expected = [f"msg_{n}" for n in range(29, -1, -1)]
    assert [r["webhook_id"] for r in log.deliveries("sub_a", limit=500)[0]] == expected
    paged = all_pages(log.deliveries, subscription_id="sub_a", limit=7)
    assert [r["webhook_id"] for r in paged] == expected


def test_an_attempt_written_twice_is_stored_once(store: Store) -> None:
    write_attempts(store, [attempt(1, webhook="msg_a")])
    write_attempts(store, [attempt(1, webhook="msg_a")])
    assert len(DeliveryLog(store).attempts("sub_a")[0]) == 1


def test_dead_letters_with_redrives_and_tasks(store: Store) -> None:
    letters = [letter(1), letter(2, reason="client_error"), letter(3, reason="endpoint_disabled")]
    batch = Batch(
        dead_letters=[dead_letter_row(1, 10 + i, x, CODEC) for i, x in enumerate(letters)]
    )
    # A mark may be read before its letter (another topic): the join does not care.
    mark = RedriveMark(1, 10, "msg_1", "sub_a", "rd_first", T0 + 5_000)
    batch.marks[(1 << 40) | 10] = mark_row(mark)
    store.write(batch)
    log = DeliveryLog(store)
    rows, cursor = log.dead_letters("sub_a")
    assert cursor is None
    assert [r["position"] for r in rows] == ["1:12", "1:11", "1:10"]
    assert rows[2] == {
        "position": "1:10",
        "webhook_id": "msg_1",
        "event_id": "evt_1",
        "event": "contact.created",
        "reason": "retries_exhausted",
        "attempts": 3,
        "last_status": 503,
        "last_error": None,
        "failed_at": "2026-05-28T20:26:41.000Z",
        "redriven_by": "rd_first",
    }
    assert rows[0]["redriven_by"] is None
    assert [r["position"] for r in log.dead_letters("sub_a", reason="client_error")[0]] == ["1:11"]
    assert [r["position"] for r in log.dead_letters("sub_a", since_ms=T0 + 2_000)[0]] == [
        "1:12",
        "1:11",
    ]
    assert [
        r["position"] for r in all_pages(log.dead_letters, subscription_id="sub_a", limit=2)
    ] == [
        "1:12",
        "1:11",
        "1:10",
    ]
    # Letters that never made an attempt are not deliveries or attempts.
    assert log.deliveries("sub_a") == ([], None)
    assert log.attempts("sub_a") == ([], None)

    tasks = log.dead_letter_tasks("sub_a")
    assert [(t.position, t.redriven) for t in tasks] == [
        ("1:10", True),
        ("1:11", False),
        ("1:12", False),
    ]
    assert CODEC.decode_task(tasks[0].task) == letters[0].task
    assert [t.position for t in log.dead_letter_tasks("sub_a", reason="client_error")] == ["1:11"]
    assert [t.position for t in log.dead_letter_tasks("sub_a", since_ms=T0 + 3_000)] == ["1:12"]
    found = log.latest_task("sub_a", "msg_2")
    assert found is not None and CODEC.decode_task(found).event_id == "evt_2"
    assert log.latest_task("sub_b", "msg_2") is None
    assert log.latest_task("sub_a", "msg_9") is None

    # A second redrive replaces the mark; a tombstone removes it.
    store.write(Batch(marks={(1 << 40) | 10: (1 << 40 | 10, "rd_second", T0 + 6_000)}))
    assert log.dead_letters("sub_a", reason="retries_exhausted")[0][0]["redriven_by"] == "rd_second"
    store.write(Batch(marks={(1 << 40) | 10: None}))
    assert log.dead_letters("sub_a", reason="retries_exhausted")[0][0]["redriven_by"] is None


def test_retention_deletes_old_rows(store: Store) -> None:
    write_attempts(
        store,
        [attempt(n, webhook=f"msg_{n % 4}") for n in range(10)],
    )
    store.write(Batch(dead_letters=[dead_letter_row(0, n, letter(n), CODEC) for n in range(10)]))
    # Attempts 0-6 go, and msg_2 (last attempt 6); msg_0, msg_1 and msg_3 keep their counts.
    assert store.expire(T0 + 6_500) == 7 + 1 + 7
    log = DeliveryLog(store)
    assert [r["event_id"] for r in log.attempts("sub_a")[0]] == ["evt_9", "evt_8", "evt_7"]
    assert {r["webhook_id"]: r["attempts"] for r in log.deliveries("sub_a")[0]} == {
        "msg_3": 2,
        "msg_1": 3,
        "msg_0": 3,
    }
    assert len(log.dead_letters("sub_a")[0]) == 3


def test_reset_forgets_rows_and_positions(store: Store) -> None:
    write_attempts(store, [attempt(1)])
    store.reset()
    assert store.positions() == {}
    assert DeliveryLog(store).attempts("sub_a") == ([], None)
    assert DeliveryLog(store).deliveries("sub_a") == ([], None)


def test_a_file_of_another_schema_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE attempts (x)")
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    store = Store(path)
    try:
        write_attempts(store, [attempt(1)])
        assert len(DeliveryLog(store).attempts("sub_a")[0]) == 1
    finally:
        store.close()


def test_readers_in_many_threads_while_the_writer_writes(store: Store) -> None:
    log = DeliveryLog(store)
    failures: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                rows = all_pages(log.attempts, subscription_id="sub_a", limit=100)
                assert len(rows) % 50 == 0  # whole batches only: a batch is one transaction
        except BaseException as exc:
            failures.append(exc)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for thread in readers:
        thread.start()
    for b in range(20):
        write_attempts(store, [attempt(b * 50 + n) for n in range(50)], start=b * 50)
    done.set()
    for thread in readers:
        thread.join(10)
    assert failures == []
    assert len(all_pages(log.attempts, subscription_id="sub_a", limit=500)) == 1000


def test_one_file_per_cluster_and_prefix(tmp_path: Path) -> None:
    def path(prefix: str, bootstrap: str = "k:9092") -> Path:
        settings = Settings.from_env(
            {}, api_data_dir=str(tmp_path), topic_prefix=prefix, bootstrap_servers=bootstrap
        )
        return index_path(settings)

    assert path("webhooks.").parent == tmp_path
    assert "webhooks" in path("webhooks.").name
    assert len({path("a.b"), path("a_b"), path("a.b", "other:9092")}) == 3
    assert path("a.b") == path("a.b")


def test_two_stores_never_write_one_file(tmp_path: Path) -> None:
    first = Store(tmp_path / "log.sqlite3")
    second = Store(tmp_path / "log.sqlite3")
    try:
        assert first.path == tmp_path / "log.sqlite3"
        assert second.path == tmp_path / "log.sqlite3.1"
    finally:
        first.close()
        second.close()
    again = Store(tmp_path / "log.sqlite3")  # released on close: resumed
    assert again.path == tmp_path / "log.sqlite3"
    again.close()


def test_a_delivery_sent_again_numbers_its_attempts_on(store: Store) -> None:
    # Two attempts, then a re-send whose retry schedule starts again at attempt 1: in one
    # batch and in the next, the log shows 3 and 4, not a second "attempt 1".
    first = [
        attempt(0, webhook="msg_x", number=1, outcome="retry", status=503),
        attempt(1, webhook="msg_x", number=2, outcome="dead_letter", status=503),
    ]
    write_attempts(store, first)
    again = [
        attempt(2, webhook="msg_x", number=1, outcome="retry", status=503),
        attempt(3, webhook="msg_x", number=2),
        attempt(4, webhook="msg_y", number=1),
    ]
    again[0].sent_again = again[1].sent_again = True  # the re-send's task has a redrive id
    write_attempts(store, again, start=2)
    rows, _ = DeliveryLog(store).attempts("sub_a")
    numbers = {(r["webhook_id"], r["started_at"][-8:-5]): r["attempt"] for r in rows}
    assert sorted(n for (w, _), n in numbers.items() if w == "msg_x") == [1, 2, 3, 4]
    assert [n for (w, _), n in numbers.items() if w == "msg_y"] == [1]
    listed = DeliveryLog(store).deliveries("sub_a")[0]
    [delivery] = [d for d in listed if d["webhook_id"] == "msg_x"]
    assert delivery["attempts"] == 4 and delivery["outcome"] == "success"


def test_health_and_activity_come_from_the_hourly_counts(store: Store) -> None:
    from worker.deliverylog.health import EndpointHealth
    from worker.deliverylog.schema import HOUR_MS

    now = (T0 // HOUR_MS) * HOUR_MS + 30 * 60_000  # half past an hour
    rows = [
        attempt(0, started_ms=now - 3 * HOUR_MS, webhook="msg_a"),  # success, 3 h ago
        attempt(1, started_ms=now - 2 * HOUR_MS, webhook="msg_b", outcome="retry", status=503),
        attempt(2, started_ms=now - 60_000, webhook="msg_b", outcome="dead_letter", status=503),
        attempt(3, started_ms=now - 30_000, webhook="msg_test_x"),  # Send test: not counted
        attempt(4, started_ms=now - 30 * HOUR_MS, webhook="msg_old"),  # outside 24 h
    ]
    write_attempts(store, rows)
    health = EndpointHealth(store)
    summary = health.summary("sub_a", now)
    assert (summary["attempts_24h"], summary["failures_24h"]) == (3, 2)
    assert summary["success_rate_24h"] == round(1 / 3, 4)
    assert summary["consecutive_failures"] == 2 and summary["last_status"] == 503
    assert summary["last_outcome"] == "dead_letter"
    day = health.activity("sub_a", 24, now)
    assert len(day) == 24 and day[-1]["start"].endswith(":00:00.000Z")
    assert [(b["successes"], b["failures"]) for b in day[-4:]] == [(1, 0), (0, 1), (0, 0), (0, 1)]
    week = health.activity("sub_a", 168, now)
    assert sum(b["successes"] for b in week) == 2  # the old one too, the test not
    assert health.summary("sub_none", now)["success_rate_24h"] is None
    store.expire(now - 10 * HOUR_MS)
    assert sum(b["successes"] for b in health.activity("sub_a", 168, now)) == 1
