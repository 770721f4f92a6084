"""CloudEvents (written by the CloudEvents SDK's Kafka binding, both modes), custom
envelopes and Debezium-shaped change events through the real worker: signed webhooks with
the mapped bodies; each kind of bad record lands in invalid-events with its reason and the
partition moves on; a tombstone is skipped."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.v1.event import CloudEvent

from tests.support.inputs import (
    ORDER,
    ORDER_BODY,
    ORDERS_INPUT,
    invalid_records,
    json_value,
    mapped_settings,
    produce_raw,
    subscribed_receiver,
)
from tests.support.worker import running

pytestmark = pytest.mark.timeout(150)


def cloud_event(n: int, **extra: object) -> CloudEvent:
    attributes = {
        "type": "contact.created",
        "source": "/crm",
        "id": f"ce-{n}",
        "specversion": "1.0",
        "subject": f"contacts/{n}",
        "time": datetime(2026, 3, 31, 14, 30, tzinfo=UTC),
        "datacontenttype": "application/json",
        "workspace": "acme",
        **extra,
    }
    return CloudEvent(attributes, {"id": n, "name": f"Contact {n}"})


def sdk_records(events: list[tuple[str, CloudEvent]]) -> list:
    out = []
    for mode, event in events:
        message = (ce_kafka.to_binary_event if mode == "binary" else ce_kafka.to_structured_event)(
            event
        )
        out.append((message.key, message.value, message.headers))
    return out


MAPPING = (
    """
inputs:
  - name: ce
    topics: [{p}ce]
    format: cloudevents
    workspace: field:workspace
  - name: orders
    topics: [{p}orders]
"""
    + ORDERS_INPUT
    + """\
  - name: cdc
    topics: [{p}cdc]
    format: debezium
    workspace: const:acme
"""
)

CHANGE = {
    "before": {"id": 7, "name": "Jane", "stage": "qualification"},
    "after": {"id": 7, "name": "Jane", "stage": "proposal"},
    "source": {"connector": "postgresql", "table": "contacts", "ts_ms": 1774967400000},
    "op": "u",
    "ts_ms": 1774967400123,
}


def test_mapped_formats_arrive_as_signed_webhooks_and_bad_records_say_why(
    settings_factory, tmp_path, topic_prefix
):
    p = topic_prefix
    settings = mapped_settings(
        settings_factory, tmp_path, ["events", "ce", "orders", "cdc"], MAPPING
    )
    boot = settings.bootstrap_servers
    with subscribed_receiver(settings) as receiver, running(settings):
        produce_raw(
            boot,
            f"{p}ce",
            [
                *sdk_records([("binary", cloud_event(1)), ("structured", cloud_event(2))]),
                (None, b"{}", {"ce_id": b"x"}),  # bad: no ce_type, not structured
                *sdk_records([("binary", cloud_event(3, tier="gold"))]),
            ],
        )
        produce_raw(
            boot,
            f"{p}orders",
            [
                (b"cust-1", json_value({**ORDER, "kind": None}), {"x-tenant": b"acme"}),
                (b"cust-1", json_value(ORDER), None),  # bad: no x-tenant header
                (b"cust-1", b"{not json", {"x-tenant": b"acme"}),
                (b"cust-1", json_value(ORDER), {"x-tenant": b"acme"}),
            ],
        )
        produce_raw(
            boot,
            f"{p}cdc",
            [
                (b'{"id": 7}', json_value({**CHANGE, "op": "x"}), None),
                (b'{"id": 7}', json_value({"schema": {}, "payload": CHANGE}), None),
                (b'{"id": 7}', json_value({**CHANGE, "op": "d", "after": None}), None),
                (b'{"id": 7}', None, None),  # the tombstone after a delete: skipped
            ],
        )
        got = receiver.wait_for("ok", 6, timeout=60)
        deadline = time.monotonic() + 30
        while len(invalid := invalid_records(boot, p)) < 5 and time.monotonic() < deadline:
            time.sleep(0.3)
        time.sleep(1.0)  # nothing more arrives (the tombstone is not delivered)
        got = receiver.received("ok")
    assert all(r.verified for r in got)
    bodies = {r.json["id"]: r.json for r in got}
    assert sorted(bodies) == sorted(["ce-1", "ce-2", "ce-3", f"{p}cdc-0-1", f"{p}cdc-0-2", "o-981"])
    expected_ce = {
        "event": "contact.created",
        "workspace": "acme",
        "id": "ce-1",
        "timestamp": "2026-03-31T14:30:00Z",
        "source": "/crm",
        "subject": "contacts/1",
        "record": {"id": 1, "name": "Contact 1"},
        "extensions": {"workspace": "acme"},
    }
    assert bodies["ce-1"] == expected_ce
    assert bodies["ce-2"] == expected_ce | {
        "id": "ce-2",
        "subject": "contacts/2",
        "record": {"id": 2, "name": "Contact 2"},
    }
    assert bodies["ce-3"]["extensions"] == {"workspace": "acme", "tier": "gold"}
    assert bodies["o-981"] == ORDER_BODY
    updated, deleted = bodies[f"{p}cdc-0-1"], bodies[f"{p}cdc-0-2"]
    assert updated["event"] == "record.updated"
    assert updated["changes"] == {"stage": {"old": "qualification", "new": "proposal"}}
    assert (deleted["event"], deleted["record"]) == ("record.deleted", CHANGE["before"])
    reasons = sorted((r.topic.removeprefix(p), r.offset, r.error) for r in invalid)
    assert [(t, o) for t, o, _ in reasons] == [
        ("cdc", 0),
        ("ce", 2),
        ("orders", 0),
        ("orders", 1),
        ("orders", 2),
    ]
    assert "debezium: 'op' must be c, u, d or r" in reasons[0][2]
    assert "no ce_type header" in reasons[1][2]
    assert "'event' is required" in reasons[2][2]
    assert "no workspace at header:x-tenant" in reasons[3][2]
    assert "not valid UTF-8 JSON" in reasons[4][2]
