"""The core pipeline end to end: real broker, real worker, real HTTP receivers."""

from __future__ import annotations

import random
from collections import defaultdict

import httpx
import orjson

from tests.support.kafka import consume_all, produce_json
from tests.support.receiver import Receiver, always, fail_first, random_failures
from tests.support.subs import SubsWriter
from tests.support.worker import running
from worker.codec.avro import AvroCodec
from worker.codec.records import RecordCodec
from worker.model import DeliveryTask
from worker.subscriptions.secrets import generate_secret

EVENT_TYPES = [
    "contact.created",
    "contact.updated",
    "deal.created",
    "deal.updated",
    "incident.raised",
]
PATTERNS = [
    ["*"],
    ["contact.*"],
    ["deal.created"],
    ["contact.saved"],
    ["deal.*", "incident.*"],
    ["incident.raised"],
    ["contact.created", "deal.updated"],
]


def _matches(patterns: list[str], event: str) -> bool:
    for p in patterns:
        if p == "*" or p == event:
            return True
        if p.endswith(".*") and event.startswith(p[:-1]):
            return True
        if p.endswith(".saved") and event in (p[:-5] + "created", p[:-5] + "updated"):
            return True
    return False


def test_fan_out_matches_exactly_and_signs_every_request(settings_factory, topic_prefix):
    settings = settings_factory(partitions=3)
    rng = random.Random(7)
    writer = SubsWriter(settings)
    with Receiver() as receiver:
        subs = []
        for i in range(30):
            workspace = f"ws{i % 3}"
            patterns = PATTERNS[i % len(PATTERNS)]
            secret = generate_secret()
            url = receiver.endpoint(f"s{i}", secret)
            sub = writer.create(workspace, url, patterns, secret=secret, ordered=i % 2 == 0)
            subs.append((f"s{i}", sub, patterns))
        events = []
        for n in range(10_000):
            events.append(
                {
                    "id": f"e{n}",
                    "event": rng.choice(EVENT_TYPES),
                    "workspace": f"ws{rng.randrange(3)}",
                    "record": {"id": str(n)},
                }
            )
        expected: dict[str, set[str]] = defaultdict(set)
        for event in events:
            for name, sub, patterns in subs:
                if sub.workspace == event["workspace"] and _matches(patterns, event["event"]):
                    expected[name].add(event["id"])
        with running(settings):
            produce_json(
                settings.bootstrap_servers,
                settings.input_topics,
                events,
                key=lambda e: e["workspace"],
            )
            for name, _, _ in subs:
                receiver.wait_for(name, len(expected[name]), timeout=90)
        total = 0
        for name, sub, _ in subs:
            got = receiver.received(name)
            ids = [r.json["id"] for r in got]
            assert set(ids) == expected[name], name
            assert all(r.verified for r in got), [r for r in got if not r.verified][:1]
            assert all(r.json["workspace"] == sub.workspace for r in got)
            total += len(set(ids))
        assert total == sum(len(v) for v in expected.values()) > 10_000


def _dead_letters(settings) -> list:
    codec = RecordCodec(AvroCodec())
    return [
        codec.decode_dead_letter(m.value)
        for m in consume_all(settings.bootstrap_servers, settings.topic_prefix + "dlq")
    ]


def test_retry_then_success_respects_delays(settings_factory):
    settings = settings_factory(retry_delays="300ms,600ms,900ms")
    writer = SubsWriter(settings)
    with Receiver() as receiver:
        secret = generate_secret()
        url = receiver.endpoint("flaky", secret, fail_first(2, status=500))
        writer.create("acme", url, ["*"], secret=secret)
        with running(settings):
            produce_json(
                settings.bootstrap_servers,
                settings.input_topics,
                [{"event": "contact.created", "workspace": "acme", "id": "one"}],
            )
            got = receiver.wait_for("flaky", 3, timeout=30)
            assert [r.status_sent for r in got] == [500, 500, 200]
            assert len({r.headers["webhook-id"] for r in got}) == 1
            assert got[1].arrived - got[0].arrived >= 0.3
            assert got[2].arrived - got[1].arrived >= 0.6
            assert all(r.verified for r in got)


def test_client_error_dead_letters_at_once(settings_factory):
    settings = settings_factory(retry_delays="200ms,200ms")
    writer = SubsWriter(settings)
    with Receiver() as receiver:
        secret = generate_secret()
        url = receiver.endpoint("bad", secret, always(400))
        sub = writer.create("acme", url, ["*"], secret=secret)
        with running(settings):
            produce_json(
                settings.bootstrap_servers,
                settings.input_topics,
                [{"event": "contact.created", "workspace": "acme", "id": "x1"}],
            )
            receiver.wait_for("bad", 1, timeout=30)
            letters = wait_dead_letters(settings, 1)
    assert len(receiver.received("bad")) == 1
    assert letters[0].reason == "client_error"
    assert letters[0].attempts == 1
    assert letters[0].last_status == 400
    assert letters[0].task.subscription_id == sub.id


def test_always_503_exhausts_delays_then_dead_letters(settings_factory):
    settings = settings_factory(retry_delays="100ms,200ms,300ms")
    writer = SubsWriter(settings)
    with Receiver() as receiver:
        secret = generate_secret()
        url = receiver.endpoint("down", secret, always(503))
        writer.create("acme", url, ["*"], secret=secret)
        with running(settings) as worker:
            produce_json(
                settings.bootstrap_servers,
                settings.input_topics,
                [{"event": "contact.created", "workspace": "acme", "id": "x2"}],
            )
            receiver.wait_for("down", 4, timeout=30)
            letters = wait_dead_letters(settings, 1)
            metrics = httpx.get(f"http://127.0.0.1:{worker.port}/metrics").text
        attempts = read_records(settings, "attempts")
    assert len(receiver.received("down")) == 4
    assert [a.attempt for a in attempts] == [1, 2, 3, 4]
    assert [a.outcome for a in attempts] == ["retry", "retry", "retry", "dead_letter"]
    assert all(a.status == 503 and a.latency_ms >= 0 for a in attempts)
    assert 'webhook_dead_letters_total{reason="retries_exhausted"} 1.0' in metrics
    assert 'webhook_retries_scheduled_total{delay="100ms"} 1.0' in metrics
    assert 'webhook_retries_scheduled_total{delay="300ms"} 1.0' in metrics
    assert 'webhook_subscriptions{status="ACTIVE"} 1.0' in metrics
    assert letters[0].reason == "retries_exhausted"
    assert letters[0].attempts == 4
    assert letters[0].last_status == 503


def read_records(settings, topic: str) -> list:
    codec = RecordCodec(AvroCodec())
    records = consume_all(settings.bootstrap_servers, settings.topic_prefix + topic)
    return sorted((codec.decode_attempt(m.value) for m in records), key=lambda a: a.attempt)


def wait_dead_letters(settings, count: int, timeout: float = 20) -> list:
    import time

    deadline = time.monotonic() + timeout
    while True:
        letters = _dead_letters(settings)
        if len(letters) >= count or time.monotonic() > deadline:
            assert len(letters) >= count, letters
            return letters
        time.sleep(0.3)


def test_ordered_endpoint_with_random_failures_keeps_order(settings_factory):
    # One partition: the flaky and the healthy endpoint share it.
    settings = settings_factory(
        partitions=1, retry_delays="50ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms"
    )
    writer = SubsWriter(settings)
    with Receiver() as receiver:
        secret = generate_secret()
        flaky_url = receiver.endpoint("flaky", secret, random_failures(0.3, seed=3))
        writer.create("acme", flaky_url, ["*"], secret=secret)
        secret = generate_secret()
        ok_url = receiver.endpoint("healthy", secret)
        writer.create("acme", ok_url, ["*"], secret=secret)
        with running(settings):
            events = [
                {"event": "contact.updated", "workspace": "acme", "id": f"o{n:04d}"}
                for n in range(500)
            ]
            produce_json(
                settings.bootstrap_servers, settings.input_topics, events, key=lambda e: "acme"
            )
            healthy = receiver.wait_for("healthy", 500, timeout=60)
            healthy_done = healthy[-1].arrived
            flaky = receiver.wait_for_success("flaky", 500, timeout=120)
    firsts: list[str] = []
    for r in receiver.received("flaky"):
        if r.json["id"] not in firsts:
            firsts.append(r.json["id"])
    assert firsts == [e["id"] for e in events]
    successes = [r.json["id"] for r in flaky if r.status_sent == 200]
    assert successes == [e["id"] for e in events]
    assert any(r.status_sent != 200 for r in receiver.received("flaky"))
    # The healthy endpoint was not held back by the flaky one's retries.
    assert healthy_done < flaky[-1].arrived
    assert [r.json["id"] for r in healthy] == [e["id"] for e in events]


def test_invalid_input_goes_to_invalid_events_and_valid_flows(settings_factory):
    settings = settings_factory()
    writer = SubsWriter(settings)
    avro = AvroCodec()
    with Receiver() as receiver:
        secret = generate_secret()
        url = receiver.endpoint("ok", secret)
        writer.create("acme", url, ["*"], secret=secret)
        # Valid Avro, but of another schema than the event's.
        wrong_avro = RecordCodec(avro).encode_task(
            DeliveryTask("m", "s", "acme", "e", "a.created", b"{}")
        )
        with running(settings) as worker:
            good = [
                orjson.dumps({"event": "a.created", "workspace": "acme", "id": f"g{i}"})
                for i in range(20)
            ]
            bad = [
                b"{not json",
                orjson.dumps({"event": "a.created"}),
                b"\xc3\x01" + b"\x00" * 12,
                wrong_avro,
                bytes(random.Random(1).randrange(256) for _ in range(64)),
                b"[1,2]",
                orjson.dumps({"event": "", "workspace": "acme"}),
            ]
            mixed: list[bytes] = []
            for i, value in enumerate(good):
                mixed.append(value)
                if i < len(bad):
                    mixed.append(bad[i])
            produce_json(settings.bootstrap_servers, settings.input_topics, mixed, raw=True)
            got = receiver.wait_for("ok", 20, timeout=30)
            invalid = []
            import time

            deadline = time.monotonic() + 20
            while len(invalid) < len(bad) and time.monotonic() < deadline:
                invalid = consume_all(
                    settings.bootstrap_servers, settings.topic_prefix + "invalid-events"
                )
                time.sleep(0.2)
            import httpx

            assert httpx.get(f"http://127.0.0.1:{worker.port}/healthz").status_code == 200
    assert sorted(r.json["id"] for r in got) == sorted(f"g{i}" for i in range(20))
    codec = RecordCodec(avro)
    records = [codec.decode_invalid(m.value) for m in invalid]
    assert sorted(r.value for r in records) == sorted(bad)
    assert all(r.error for r in records)
