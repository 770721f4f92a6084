"""kill -9 mid-run, then a restart: nothing is lost (duplicates allowed for in-flight work)."""

from __future__ import annotations

import time

from tests.support.kafka import produce_json
from tests.support.receiver import Receiver, Reply
from tests.support.subs import SubsWriter
from tests.support.worker import ProcessWorker
from worker.kafka.processes import free_port
from worker.subscriptions.secrets import generate_secret


def test_kill_9_then_restart_loses_nothing(settings_factory):
    # A small workspace cap: the restart replays hundreds of settled deliveries, each refused
    # at the door, and the ordered endpoints share the workspace's slots with a flood.
    settings = settings_factory(
        partitions=3, retry_delays="200ms,400ms", max_in_flight_per_workspace=8
    )
    writer = SubsWriter(settings)
    with Receiver() as receiver:
        names = []
        for i in range(4):
            secret = generate_secret()
            # Slow enough that the kill lands mid-run.
            url = receiver.endpoint(f"e{i}", secret, lambda n, body: Reply(delay_s=0.002))
            writer.create("acme", url, ["*"], secret=secret, ordered=i % 2 == 0)
            names.append(f"e{i}")
        events = [
            {"event": "contact.created", "workspace": "acme", "id": f"k{n}"} for n in range(2000)
        ]
        produce_json(
            settings.bootstrap_servers, settings.input_topics, events, key=lambda e: e["id"]
        )
        port = free_port()
        first = ProcessWorker(settings, port)
        try:
            first.wait_ready()
            deadline = time.monotonic() + 60
            while sum(len(receiver.received(n)) for n in names) < 1500:
                assert time.monotonic() < deadline, "no progress before the kill"
                time.sleep(0.05)
            first.kill()
            first_log = first.output()
        finally:
            first.close()
        before = {n: len(receiver.received(n)) for n in names}
        assert sum(before.values()) < 4 * 2000, "the kill came too late to prove anything"
        second = ProcessWorker(settings, free_port())
        try:
            second.wait_ready()
            for name in names:
                try:
                    receiver.wait_for_ids(name, {e["id"] for e in events}, timeout=90)
                except AssertionError as e:
                    after = {n: len(receiver.received(n)) for n in names}
                    raise AssertionError(
                        f"{str(e)[:300]}\nreceived before the kill {before}, now {after}"
                        f"\n--- first worker ---\n{first_log[-4000:]}"
                        f"\n--- second worker ---\n{second.output()[-6000:]}"
                    ) from None
        finally:
            second.terminate()
            second.close()
    for name in names:
        got = [r.json["id"] for r in receiver.received(name)]
        assert set(got) == {e["id"] for e in events}
        assert all(r.verified for r in receiver.received(name))


def test_sigterm_then_restart_loses_nothing_and_duplicates_nothing(settings_factory):
    settings = settings_factory(partitions=3, retry_delays="200ms,400ms")
    writer = SubsWriter(settings)
    with Receiver() as receiver:
        names = []
        for i in range(4):
            secret = generate_secret()
            url = receiver.endpoint(f"e{i}", secret, lambda n, body: Reply(delay_s=0.002))
            writer.create("acme", url, ["*"], secret=secret, ordered=i % 2 == 0)
            names.append(f"e{i}")
        events = [
            {"event": "contact.created", "workspace": "acme", "id": f"t{n}"} for n in range(2000)
        ]
        produce_json(
            settings.bootstrap_servers, settings.input_topics, events, key=lambda e: e["id"]
        )
        first = ProcessWorker(settings, free_port())
        try:
            first.wait_ready()
            deadline = time.monotonic() + 60
            while sum(len(receiver.received(n)) for n in names) < 1500:
                assert time.monotonic() < deadline, "no progress before SIGTERM"
                time.sleep(0.05)
            assert first.terminate() == 0
        finally:
            first.close()
        before = sum(len(receiver.received(n)) for n in names)
        assert before < 4 * 2000, "SIGTERM came too late to prove anything"
        second = ProcessWorker(settings, free_port())
        try:
            second.wait_ready()
            for name in names:
                receiver.wait_for_ids(name, {e["id"] for e in events}, timeout=90)
            time.sleep(1)  # anything duplicated would arrive now
        finally:
            second.terminate()
            second.close()
    for name in names:
        got = [r.json["id"] for r in receiver.received(name)]
        assert sorted(got) == sorted(e["id"] for e in events), f"{name}: lost or duplicated"


def test_kill_9_resends_only_recent_work_even_behind_a_slow_ordered_endpoint(settings_factory):
    """One partition shared by a slow ordered endpoint and a fast unordered one: the committed
    offset stays behind the ordered backlog, yet after kill -9 the fast endpoint's finished
    deliveries are not sent again (they are recorded as finished past the commit)."""
    settings = settings_factory(partitions=1, retry_delays="200ms")
    writer = SubsWriter(settings)
    with Receiver() as receiver:
        secret = generate_secret()
        slow = receiver.endpoint("slow", secret, lambda n, body: Reply(delay_s=0.05))
        fast = receiver.endpoint("fast", secret)
        writer.create("acme", slow, ["*"], secret=secret, ordered=True)
        writer.create("acme", fast, ["*"], secret=secret, ordered=False)
        events = [{"event": "deal.updated", "workspace": "acme", "id": f"s{n}"} for n in range(400)]
        produce_json(settings.bootstrap_servers, settings.input_topics, events, key="acme")
        ids = {e["id"] for e in events}
        first = ProcessWorker(settings, free_port())
        try:
            first.wait_ready()
            receiver.wait_for_ids("fast", ids, timeout=60)
            receiver.wait_for("slow", 40, timeout=60)
            time.sleep(1.5)  # the finished offsets are recorded once a second
            first.kill()
        finally:
            first.close()
        slow_before = len(receiver.received("slow"))
        assert slow_before < len(events), "the kill came too late to prove anything"
        second = ProcessWorker(settings, free_port())
        try:
            second.wait_ready()
            receiver.wait_for_ids("slow", ids, timeout=90)
        finally:
            second.terminate()
            second.close()
    fast_got = [r.json["id"] for r in receiver.received("fast")]
    assert sorted(fast_got) == sorted(ids), "fast endpoint: every event exactly once"
    slow_got = [r.json["id"] for r in receiver.received("slow")]
    assert set(slow_got) == ids
    # Resent to the ordered endpoint: only what finished in the last second or so.
    assert len(slow_got) - len(ids) <= 25, len(slow_got) - len(ids)
    first_arrivals = list(dict.fromkeys(slow_got))
    assert first_arrivals == [e["id"] for e in events]
