"""A second worker joins and the first leaves mid-run, while ordered endpoints wait on
retries: nothing lost, order kept, nothing left paused (every endpoint gets all 400), no retry
sent before it was due."""

from __future__ import annotations

import time

from tests.support.kafka import consume_all, produce_json
from tests.support.receiver import Receiver, random_failures
from tests.support.subs import SubsWriter
from tests.support.worker import ThreadWorker
from worker.codec.avro import AvroCodec
from worker.codec.records import RecordCodec
from worker.kafka.topics import Topics
from worker.subscriptions.secrets import generate_secret


def first_arrivals(receiver: Receiver, name: str) -> list[str]:
    seen: dict[str, None] = {}
    for r in receiver.received(name):
        seen.setdefault(r.json["id"], None)
    return list(seen)


def early_retries(settings) -> tuple[int, list[str]]:
    """Retries (attempt n >= 2) that started before the earliest due time any record of
    attempt n - 1 of the same delivery announced; and how many retries there were."""
    codec = RecordCodec(AvroCodec())
    records = consume_all(settings.bootstrap_servers, Topics.from_settings(settings).attempts)
    due: dict[tuple[str, int], int] = {}
    retries: list = []
    for record in records:
        attempt = codec.decode_attempt(record.value)
        if attempt.next_attempt_ms is not None:
            key = (attempt.delivery_id, attempt.attempt)
            due[key] = min(due.get(key, attempt.next_attempt_ms), attempt.next_attempt_ms)
        if attempt.attempt >= 2:
            retries.append(attempt)
    early = [
        f"{a.delivery_id} attempt {a.attempt} at {a.started_ms}, due {due[key]}"
        for a in retries
        if (key := (a.delivery_id, a.attempt - 1)) in due and a.started_ms < due[key]
    ]
    assert all((a.delivery_id, a.attempt - 1) in due for a in retries)
    return len(retries), early


def test_join_and_leave_mid_run_keeps_order_and_loses_nothing(settings_factory):
    settings = settings_factory(partitions=4, retry_delays="100ms,200ms,200ms,200ms,200ms,200ms")
    writer = SubsWriter(settings)
    names = [f"o{i}" for i in range(4)]
    with Receiver() as receiver:
        for i, name in enumerate(names):
            secret = generate_secret()
            url = receiver.endpoint(name, secret, random_failures(0.25, seed=i))
            writer.create("acme", url, ["*"], secret=secret)
        events = [
            {"event": "deal.updated", "workspace": "acme", "id": f"r{n:04d}"} for n in range(400)
        ]
        produce_json(
            settings.bootstrap_servers, settings.input_topics, events, key=lambda e: "acme"
        )

        def progress() -> int:
            return min(len(first_arrivals(receiver, n)) for n in names)

        def wait_progress(target: int) -> None:
            deadline = time.monotonic() + 60
            while progress() < target:
                assert time.monotonic() < deadline, f"stuck at {progress()}"
                time.sleep(0.05)

        a = ThreadWorker(settings).start()
        b = None
        try:
            a.wait_ready()
            wait_progress(80)
            b = ThreadWorker(settings).start()
            b.wait_ready()
            wait_progress(200)
            a.stop()
            for name in names:
                # Every event, not 400 successes: a task in flight on a revoked partition is
                # sent again by its new owner, so successes can reach 400 before the last event.
                receiver.wait_for_ids(name, {e["id"] for e in events}, timeout=90, success=True)
        finally:
            a.stop()
            if b is not None:
                b.stop()
    expected = [e["id"] for e in events]
    for name in names:
        assert first_arrivals(receiver, name) == expected, name
        successes = {r.json["id"] for r in receiver.received(name) if r.status_sent == 200}
        assert successes == set(expected)
    retries, early = early_retries(settings)
    assert retries > 50  # 25 % of 1,600 first attempts failed: the check has cases
    assert early == []
