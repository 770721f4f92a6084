"""A delivery is sent once: a second task for the same (event, subscription), as a router
replay or a re-produced event id writes it, is not sent again when the first succeeded, was
dead-lettered, or is in flight, also after a kill -9 and a new process."""

from __future__ import annotations

import time
from collections import Counter

from tests.support.kafka import produce_json
from tests.support.receiver import Receiver, Reply
from tests.support.subs import SubsWriter
from tests.support.worker import ProcessWorker, metric
from worker.config import Settings
from worker.kafka.processes import free_port
from worker.subscriptions.secrets import generate_secret


def skipped(port: int) -> float:
    return metric(port, "webhook_duplicates_skipped_total")


def produce(settings: Settings, ids: list[str]) -> None:
    events = [{"event": "deal.updated", "workspace": "acme", "id": i} for i in ids]
    produce_json(settings.bootstrap_servers, settings.input_topics, events, key="acme")


def wait_skipped(port: int, expected: float, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while skipped(port) < expected:
        assert time.monotonic() < deadline, f"skipped {skipped(port)}, expected {expected}"
        time.sleep(0.1)
    time.sleep(0.5)  # a copy sent anyway would arrive about now
    assert skipped(port) == expected


def test_a_delivery_is_sent_once_across_replays_and_restarts(settings_factory):
    # Dead letters here must come from requests, not from auto-disabling the endpoint.
    settings = settings_factory(partitions=2, disable_after_failures=1000)
    writer = SubsWriter(settings)
    with Receiver() as receiver:
        secret = generate_secret()
        names = ["ordered", "unordered", "rejecting"]
        writer.create("acme", receiver.endpoint("ordered", secret), ["*"], secret=secret)
        loose = receiver.endpoint("unordered", secret, lambda n, body: Reply(delay_s=0.01))
        writer.create("acme", loose, ["*"], secret=secret, ordered=False)
        # 400: dead-lettered at once (client_error), a settled outcome too.
        rejecting = receiver.endpoint("rejecting", secret, lambda n, body: Reply(status=400))
        writer.create("acme", rejecting, ["*"], secret=secret, ordered=False)
        first_ids = [f"d{n:02d}" for n in range(40)]
        produce(settings, first_ids)
        port = free_port()
        first = ProcessWorker(settings, port)
        try:
            first.wait_ready()
            for name in names:
                receiver.wait_for_ids(name, set(first_ids), timeout=60)
            # The same events again, as a router that crashed before committing re-routes
            # them, plus a new one: only the new one is sent.
            produce(settings, [*first_ids[:20], "d40"])
            for name in names:
                receiver.wait_for_ids(name, {"d40"}, timeout=30)
            wait_skipped(port, 20 * len(names))
            first.kill()
        finally:
            first.close()

        # A new process learns what settled from the attempts and dlq topics.
        produce(settings, [*first_ids[20:], "d41"])
        port = free_port()
        second = ProcessWorker(settings, port)
        try:
            second.wait_ready()
            for name in names:
                receiver.wait_for_ids(name, {"d41"}, timeout=30)
            wait_skipped(port, 20 * len(names))
            assert second.terminate() == 0
        finally:
            second.close()

    expected = [*first_ids, "d40", "d41"]
    for name in names:
        got = [r.json["id"] for r in receiver.received(name)]
        assert Counter(got) == Counter(expected), f"{name}: each event exactly once"
    assert [r.json["id"] for r in receiver.received("ordered")] == expected


def test_with_a_zero_window_every_copy_is_sent(settings_factory):
    settings = settings_factory(partitions=1, dedupe_window_ms=0)
    writer = SubsWriter(settings)
    with Receiver() as receiver:
        secret = generate_secret()
        writer.create("acme", receiver.endpoint("e", secret), ["*"], secret=secret)
        produce(settings, ["x1", "x2", "x1"])
        port = free_port()
        worker = ProcessWorker(settings, port)
        try:
            worker.wait_ready()
            receiver.wait_for("e", 3, timeout=60)
            assert skipped(port) == 0
            assert worker.terminate() == 0
        finally:
            worker.close()
    assert [r.json["id"] for r in receiver.received("e")] == ["x1", "x2", "x1"]
