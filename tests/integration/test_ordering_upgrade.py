"""Upgrade: ordering state written by the release before ordering scopes (v1 parked entries
and a v1 retry copy, for a subscription stored with only ``ordered``) keeps its meaning: the
head is retried from its delay topic, then the parked tasks are read back and delivered in
order, one at a time (the endpoint scope)."""

from __future__ import annotations

import io
import json

import orjson
from confluent_kafka import Producer
from fastavro import parse_schema, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

from tests.support.receiver import Receiver, Reply
from tests.support.subs import SubsWriter
from tests.support.worker import running
from worker.codec.avro import MARKER, schema_dir
from worker.kafka.topics import Topics
from worker.subscriptions.secrets import generate_secret


def v1(name: str, record: dict[str, object]) -> bytes:
    raw = json.loads((schema_dir() / "history" / f"{name}.v1.avsc").read_text())
    parsed = parse_schema(raw, named_schemas={})
    header = MARKER + bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
    out = io.BytesIO(header)
    out.seek(len(header))
    schemaless_writer(out, parsed, record)
    return out.getvalue()


def v1_task(sub_id: str, name: str, seq: int, hop: int = 0) -> dict[str, object]:
    return {
        "delivery_id": f"msg_{name}",
        "subscription_id": sub_id,
        "workspace": "acme",
        "event_id": name,
        "event_type": "deal.updated",
        "body": orjson.dumps({"id": name, "event": "deal.updated"}),
        "ordered": True,
        "event_time_ms": 0,
        "created_ms": 0,
        "seq": seq,
        "attempt": hop,
        "hop": hop,
        "due_ms": 0,
        "last_status": None,
        "last_error": None,
        "source": "",
        "redrive_id": None,
    }


def test_v1_parked_state_drains_in_order(settings_factory):
    settings = settings_factory(partitions=1, retry_delays="200ms")
    topics = Topics.from_settings(settings)
    with Receiver() as receiver:
        secret = generate_secret()
        url = receiver.endpoint("old", secret, lambda n, body: Reply(delay_s=0.05))
        sub = SubsWriter(settings).create("acme", url, ["*"], secret=secret, ordered=True)
        assert sub.ordering is None  # stored as before scopes existed
        producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
        head = v1_task(sub.id, "a", 100, hop=1)
        key = sub.id.encode()
        producer.produce(topics.retry_topic(200), v1("delivery_task", head), key, partition=0)
        parked = [
            (f"head/{sub.id}", {"kind": "head", "task": head}),
            (f"task/{sub.id}/{101:020d}", {"kind": "task", "task": v1_task(sub.id, "b", 101)}),
            (f"task/{sub.id}/{102:020d}", {"kind": "task", "task": v1_task(sub.id, "c", 102)}),
        ]
        for name, record in parked:
            producer.produce(topics.parked, v1("parked", record), name.encode(), partition=0)
        assert producer.flush(30) == 0
        with running(settings):
            got = receiver.wait_for_ids("old", {"a", "b", "c"}, timeout=60)
    assert [r.json["id"] for r in got] == ["a", "b", "c"]
    assert receiver.most_concurrent("old") == 1
