"""A stream with 10,000 malformed records mixed into valid ones: the worker never crashes or
stalls, every bad record lands in invalid-events with its error, oversized events are refused."""

from __future__ import annotations

import random
import time

import httpx
import orjson

from tests.support.kafka import consume_all, produce_json
from tests.support.receiver import Receiver
from tests.support.subs import SubsWriter
from tests.support.worker import running
from worker.codec.avro import AvroCodec
from worker.codec.records import RecordCodec
from worker.subscriptions.secrets import generate_secret


def malformed(rng: random.Random, i: int) -> bytes:
    kind = i % 6
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80)))
    if kind == 1:
        return b'{"event": "a.b", "workspace": ' + str(i).encode()  # truncated JSON
    if kind == 2:
        return orjson.dumps({"event": "a.b"})  # no workspace
    if kind == 3:
        return b"\xc3\x01" + bytes(rng.randrange(256) for _ in range(20))  # bad Avro
    if kind == 4:
        return orjson.dumps([i])
    return orjson.dumps({"event": "a b", "workspace": "acme"})  # bad event type


def test_ten_thousand_malformed_records(settings_factory):
    settings = settings_factory(max_event_bytes=2000)
    writer = SubsWriter(settings)
    rng = random.Random(11)
    with Receiver() as receiver:
        secret = generate_secret()
        url = receiver.endpoint("ok", secret)
        writer.create("acme", url, ["*"], secret=secret, ordered=False)
        bad = [malformed(rng, i) for i in range(10_000)]
        bad.append(orjson.dumps({"event": "a.b", "workspace": "acme", "pad": "x" * 3000}))
        good = [
            orjson.dumps({"event": "a.created", "workspace": "acme", "id": f"g{i}"})
            for i in range(200)
        ]
        stream = bad + good
        rng.shuffle(stream)
        with running(settings) as worker:
            produce_json(settings.bootstrap_servers, settings.input_topics, stream, raw=True)
            got = receiver.wait_for("ok", 200, timeout=90)
            deadline = time.monotonic() + 60
            while True:
                invalid = consume_all(
                    settings.bootstrap_servers, settings.topic_prefix + "invalid-events"
                )
                if len(invalid) >= len(bad) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert httpx.get(f"http://127.0.0.1:{worker.port}/healthz").status_code == 200
    assert sorted(r.json["id"] for r in got) == sorted(f"g{i}" for i in range(200))
    codec = RecordCodec(AvroCodec())
    records = [codec.decode_invalid(m.value) for m in invalid]
    assert len(records) == len(bad)
    assert sorted(r.value or b"" for r in records) == sorted(bad)
    assert all(r.error and "\n" not in r.error for r in records)
    assert any("above the limit of 2000" in r.error for r in records)
