"""The ``key`` ordering scope: events of one ordering key reach the endpoint in input order,
each attempted only once the previous one of its key succeeded, while other keys flow; through
kill -9 and a rebalance. Also ``max_in_flight`` (the receiver counts concurrent requests) and
the ``none`` scope."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import pytest

from tests.support.kafka import produce_json
from tests.support.receiver import Received, Receiver, Reply, random_failures
from tests.support.subs import SubsWriter
from tests.support.worker import ProcessWorker, ThreadWorker, running
from worker.kafka.processes import free_port
from worker.subscriptions.secrets import generate_secret

ENDPOINTS = 3
KEYS = 40
ROUNDS = 6  # events per key
DELAYS = ",".join(["100ms"] + ["200ms"] * 11)  # 13 attempts: at 30 % none is dead-lettered


def keyed_events(prefix: str, keys: int, rounds: int) -> list[dict[str, object]]:
    """``rounds`` updates of each of ``keys`` records, interleaved (key k's n-th event is
    ``<prefix>k-n``); the input's Kafka key is the record id."""
    return [
        {
            "event": "contact.updated",
            "workspace": "acme",
            "entity": "contact",
            "id": f"{prefix}{k}-{n}",
            "record": {"id": k},  # a number: the same key as "k"
        }
        for n in range(rounds)
        for k in range(keys)
    ]


def key_violations(received: list[Received]) -> list[str]:
    """Per key: event n+1 first arrived before event n first succeeded."""
    first_arrival: dict[str, int] = {}
    first_success: dict[str, int] = {}
    for i, r in enumerate(received):
        first_arrival.setdefault(r.json["id"], i)
        if r.status_sent == 200:
            first_success.setdefault(r.json["id"], i)
    bad = []
    for event_id, arrived in first_arrival.items():
        key, n = event_id.rsplit("-", 1)
        previous = f"{key}-{int(n) - 1}"
        if int(n) > 0 and not first_success.get(previous, len(received)) < arrived:
            bad.append(
                f"{event_id} arrived at {arrived}, {previous} succeeded at "
                f"{first_success.get(previous)}"
            )
    return bad


def wait_until(done: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.slow
def test_per_key_order_through_three_kills_and_a_rebalance(settings_factory):
    settings = settings_factory(partitions=4, retry_delays=DELAYS)
    writer = SubsWriter(settings)
    names = [f"k{i}" for i in range(ENDPOINTS)]
    events = keyed_events("e", KEYS, ROUNDS)
    ids = {str(e["id"]) for e in events}
    with Receiver() as receiver:
        for i, name in enumerate(names):
            secret = generate_secret()
            behaviour = random_failures(0.3, seed=i)

            def slowed(n: int, body: bytes, b=behaviour) -> Reply:
                reply = b(n, body)
                reply.delay_s = 0.01
                return reply

            url = receiver.endpoint(name, secret, slowed)
            writer.create("acme", url, ["*"], secret=secret, ordering="key", max_in_flight=10)
        produce_json(
            settings.bootstrap_servers,
            settings.input_topics,
            events,
            key=lambda e: str(e["record"]["id"]),
        )

        def delivered() -> int:
            return sum(
                len({r.json["id"] for r in receiver.received(n) if r.status_sent == 200})
                for n in names
            )

        total = ENDPOINTS * len(events)
        for share in (0.15, 0.35, 0.55):
            worker = ProcessWorker(settings, free_port())
            try:
                worker.wait_ready()
                wait_until(lambda s=share: delivered() >= s * total, f"stuck at {delivered()}")
                worker.kill()
            finally:
                worker.close()
        assert delivered() < 0.8 * total, "the kills came too late to prove anything"
        a = ThreadWorker(settings).start()
        b = None
        try:
            a.wait_ready()
            wait_until(lambda: delivered() >= 0.65 * total, f"stuck at {delivered()}")
            b = ThreadWorker(settings).start()  # joins: the partitions are shared
            b.wait_ready()
            wait_until(lambda: delivered() >= 0.8 * total, f"stuck at {delivered()}")
            a.stop()  # leaves: b takes everything
            wait_until(lambda: delivered() >= total, f"stuck at {delivered()}", timeout=120)
        finally:
            a.stop()
            if b is not None:
                b.stop()
    for name in names:
        got = receiver.received(name)
        assert {r.json["id"] for r in got if r.status_sent == 200} == ids, f"{name} lost events"
        assert key_violations(got) == [], name
        assert all(r.verified for r in got)


def test_max_in_flight_and_the_none_scope(settings_factory):
    """A key-scoped endpoint capped at 3, a none-scoped one capped at 4, an endpoint-scoped
    one: the receiver never sees more at once, every event arrives, and key order holds."""
    settings = settings_factory(partitions=2)
    writer = SubsWriter(settings)
    caps = {"keyed": ("key", 3), "loose": ("none", 4), "fifo": ("endpoint", None)}
    events = keyed_events("m", 30, 4)
    ids = {str(e["id"]) for e in events}
    with Receiver() as receiver:
        for name, (ordering, cap) in caps.items():
            secret = generate_secret()
            url = receiver.endpoint(name, secret, lambda n, body: Reply(delay_s=0.03))
            writer.create("acme", url, ["*"], secret=secret, ordering=ordering, max_in_flight=cap)
        produce_json(
            settings.bootstrap_servers,
            settings.input_topics,
            events,
            key=lambda e: str(e["record"]["id"]),
        )
        with running(settings):
            for name in caps:
                receiver.wait_for_ids(name, ids, timeout=60)
    assert receiver.most_concurrent("keyed") == 3  # never more, and the keys did overlap
    assert receiver.most_concurrent("loose") == 4
    assert receiver.most_concurrent("fifo") == 1
    assert key_violations(receiver.received("keyed")) == []
    fifo = receiver.received("fifo")
    assert len(fifo) == len(ids) and key_violations(fifo) == []


def test_a_scope_change_drains_what_is_held_in_the_old_order_first(settings_factory):
    """An endpoint-scoped subscription with a failing head and tasks parked behind it is
    switched to the key scope: the held tasks, and those routed while they drain, go in the
    old (endpoint) order; then the key scope applies."""
    settings = settings_factory(partitions=1, retry_delays=",".join(["300ms"] * 14))
    writer = SubsWriter(settings)
    with Receiver() as receiver:
        secret = generate_secret()
        url = receiver.endpoint(
            "hook", secret, lambda n, body: Reply(status=503 if n <= 12 else 200)
        )
        sub = writer.create("acme", url, ["*"], secret=secret, ordering="endpoint")
        old = keyed_events("a", 5, 2)
        new = keyed_events("b", 5, 2)
        with running(settings):
            produce_json(settings.bootstrap_servers, settings.input_topics, old, key="one")
            receiver.wait_for("hook", 2, timeout=30)  # the head failed and is being retried
            writer.writer.put(replace(sub, ordering="key"))
            time.sleep(1.0)  # the router's table follows the change
            produce_json(settings.bootstrap_servers, settings.input_topics, new, key="one")
            receiver.wait_for_ids("hook", {str(e["id"]) for e in old + new}, timeout=60)
    first = list(dict.fromkeys(r.json["id"] for r in receiver.received("hook")))
    assert first == [e["id"] for e in old + new]  # one lane, in the old order
