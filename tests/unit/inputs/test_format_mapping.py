"""Each input format maps its records to the envelope the router validates (no broker)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.support.inputs import ORDER, ORDER_BODY, ORDERS_INPUT
from worker.codec.avro import AvroCodec
from worker.codec.events import InvalidEventError
from worker.config import Settings
from worker.inputs import InputDecoder, load_inputs
from worker.inputs.formats import SkippedError
from worker.inputs.record import InputRecord

AVRO = AvroCodec()


def decoder(tmp_path: Path, yaml_text: str, topics: str) -> InputDecoder:
    path = tmp_path / "inputs.yaml"
    path.write_text(yaml_text)
    settings = Settings.from_env({}, inputs=str(path), input_topics=topics)
    return InputDecoder(avro=AVRO, max_bytes=100_000, spec=load_inputs(settings))


def record(topic: str, key: bytes | None = None, headers=None, offset: int = 42) -> InputRecord:
    return InputRecord(topic, 0, offset, 1_774_967_400_000, key, headers)


def explain(dec: InputDecoder, rec: InputRecord, value: object) -> dict:
    raw = value if isinstance(value, bytes) or value is None else orjson.dumps(value)
    _, event = dec.explain(rec, raw)
    return event.data


CHANGE = {
    "before": {"id": 7, "name": "Jane Smith", "stage": "qualification", "tenant": "acme"},
    "after": {"id": 7, "name": "Jane Smith", "stage": "proposal", "tenant": "acme"},
    "source": {"connector": "postgresql", "table": "contacts", "ts_ms": 1774967400000},
    "op": "u",
    "ts_ms": 1774967400123,
}


@pytest.fixture
def debezium(tmp_path: Path) -> InputDecoder:
    return decoder(
        tmp_path,
        "inputs:\n  - {name: cdc, topics: [crm.public.contacts], format: debezium,"
        " workspace: 'field:row.tenant'}\n",
        "crm.public.contacts",
    )


def test_debezium_update_carries_exactly_the_changed_columns(debezium):
    data = explain(debezium, record("crm.public.contacts", b'{"id": 7}'), CHANGE)
    assert data["event"] == "record.updated"
    assert data["workspace"] == "acme"
    assert data["entity"] == "contacts"
    assert data["record"] == CHANGE["after"]
    assert data["changes"] == {"stage": {"old": "qualification", "new": "proposal"}}
    assert data["ordering_key"] == "contacts/7"
    assert data["id"] == "crm.public.contacts-0-42"
    assert data["timestamp"] == "2026-03-31T14:30:00.000Z"


def test_debezium_with_schemas_create_delete_and_the_key_as_record_id(debezium):
    key = orjson.dumps({"schema": {"type": "struct"}, "payload": {"contact_id": 9}})
    created = {**CHANGE, "op": "c", "before": None, "after": {"name": "A", "tenant": "acme"}}
    data = explain(
        debezium,
        record("crm.public.contacts", key),
        {"schema": {"type": "struct"}, "payload": created},
    )
    assert (data["event"], data["record"], data["ordering_key"]) == (
        "record.created",
        {"name": "A", "tenant": "acme", "id": 9},
        "contacts/9",
    )
    assert "changes" not in data
    deleted = {**CHANGE, "op": "d", "after": None}
    data = explain(debezium, record("crm.public.contacts", b'{"id": 7}'), deleted)
    assert (data["event"], data["record"]) == ("record.deleted", CHANGE["before"])


def test_debezium_tombstones_snapshots_and_bad_changes(tmp_path: Path, debezium):
    with pytest.raises(SkippedError, match="tombstone"):
        debezium.explain(record("crm.public.contacts", b'{"id": 7}'), None)
    assert debezium.read(record("crm.public.contacts"), None) is None
    snap = orjson.dumps({**CHANGE, "op": "r"})
    assert explain(debezium, record("crm.public.contacts"), snap)["event"] == "record.created"
    skipping = decoder(
        tmp_path,
        "inputs:\n  - {topics: [t], format: debezium, workspace: 'const:w', snapshot: skip,"
        " events: entity}\n",
        "t",
    )
    with pytest.raises(SkippedError, match="snapshot"):
        skipping.explain(record("t"), snap)
    assert explain(skipping, record("t"), CHANGE)["event"] == "contacts.updated"
    with pytest.raises(InvalidEventError, match="debezium: 'op' must be"):
        debezium.explain(record("crm.public.contacts"), orjson.dumps({**CHANGE, "op": "x"}))
    with pytest.raises(InvalidEventError, match="without an 'after' row"):
        debezium.explain(record("crm.public.contacts"), orjson.dumps({**CHANGE, "after": None}))
    with pytest.raises(InvalidEventError, match=r"no workspace at field:row\.tenant"):
        after = {**CHANGE["after"], "tenant": None}
        debezium.explain(record("crm.public.contacts"), orjson.dumps({**CHANGE, "after": after}))


@pytest.fixture
def cloudevents(tmp_path: Path) -> InputDecoder:
    return decoder(
        tmp_path,
        "inputs:\n  - topics: '^ce\\.'\n    format: cloudevents\n    workspace: field:workspace\n",
        "^ce\\..*",
    )


def test_cloudevents_binary_and_structured_give_the_same_envelope(cloudevents):
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_type", b"contact.created"),
        ("ce_id", b"e-1"),
        ("ce_source", b"/crm"),
        ("ce_subject", b"contacts/7"),
        ("ce_time", b"2026-03-31T14:30:00Z"),
        ("ce_workspace", b"acme"),
        ("content-type", b"application/json"),
    ]
    binary = explain(cloudevents, record("ce.crm", headers=headers), {"id": 7})
    structured = explain(
        cloudevents,
        record("ce.crm", headers=[("content-type", b"application/cloudevents+json")]),
        {
            "specversion": "1.0",
            "type": "contact.created",
            "id": "e-1",
            "source": "/crm",
            "subject": "contacts/7",
            "time": "2026-03-31T14:30:00Z",
            "workspace": "acme",
            "datacontenttype": "application/json",
            "data": {"id": 7},
        },
    )
    expected = {
        "event": "contact.created",
        "workspace": "acme",
        "id": "e-1",
        "timestamp": "2026-03-31T14:30:00Z",
        "source": "/crm",
        "subject": "contacts/7",
        "record": {"id": 7},
        "extensions": {"workspace": "acme"},
    }
    assert binary == expected
    assert structured == expected


def test_cloudevents_bad_records_say_why(cloudevents):
    with pytest.raises(InvalidEventError, match="no ce_type header"):
        cloudevents.explain(record("ce.crm", headers=[("ce_id", b"1")]), b"{}")
    headers = [("ce_type", b"a.b"), ("ce_workspace", b"acme")]
    with pytest.raises(InvalidEventError, match="data must be a JSON object"):
        cloudevents.explain(record("ce.crm", headers=headers), b"[1]")
    with pytest.raises(InvalidEventError, match="no workspace at field:workspace"):
        cloudevents.explain(record("ce.crm", headers=[("ce_type", b"a.b")]), b"{}")
    # An event without data is an event.
    assert "record" not in explain(cloudevents, record("ce.crm", headers=headers), None)


def test_custom_takes_each_part_from_its_source(tmp_path: Path):
    dec = decoder(
        tmp_path,
        "inputs:\n  - topics: [orders]\n" + ORDERS_INPUT,
        "orders",
    )
    rec = record("orders", key=b"cust-1", headers=[("x-tenant", b"acme")])
    assert explain(dec, rec, ORDER) == ORDER_BODY
    with pytest.raises(InvalidEventError, match="'event' is required"):
        dec.explain(rec, orjson.dumps({**ORDER, "kind": None}))
    with pytest.raises(InvalidEventError, match="no workspace at header:x-tenant"):
        dec.explain(record("orders"), orjson.dumps(ORDER))
    with pytest.raises(InvalidEventError, match="not valid UTF-8 JSON"):
        dec.explain(rec, b"{nope")
    with pytest.raises(InvalidEventError, match="Schema Registry framing"):
        dec.explain(rec, b"\x00\x00\x00\x00\x07{}")


def test_envelope_topics_without_a_mapping_decode_as_before(tmp_path: Path, debezium):
    rec = record("events")
    event = debezium.read(rec, orjson.dumps({"event": "a.b", "workspace": "w"}))
    assert event is not None and event.data["id"] == "events-0-42"
    dec = decoder(
        tmp_path,
        "inputs:\n  - {topics: [events], format: envelope, workspace: 'header:ws'}\n",
        "events",
    )
    rec = record("events", headers=[("ws", b"override")])
    assert explain(dec, rec, {"event": "a.b", "workspace": "w"})["workspace"] == "override"
