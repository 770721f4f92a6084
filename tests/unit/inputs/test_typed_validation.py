"""Formats whose envelope skips validate_envelope's type checks (``typed``: Debezium,
CloudEvents) still reject every bad part that came from the record, with a one-line reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.unit.inputs.test_format_mapping import CHANGE, decoder, record
from worker.codec.events import InvalidEventError
from worker.inputs import InputDecoder

STRUCTURED = [("content-type", b"application/cloudevents+json")]
CLOUDEVENT = {"specversion": "1.0", "type": "a.b", "id": "e-1", "workspace": "acme"}


@pytest.fixture
def debezium(tmp_path: Path) -> InputDecoder:
    return decoder(
        tmp_path,
        "inputs:\n  - {topics: [cdc], format: debezium, workspace: 'field:row.tenant',"
        " events: entity}\n",
        "cdc",
    )


@pytest.fixture
def cloudevents(tmp_path: Path) -> InputDecoder:
    return decoder(
        tmp_path,
        "inputs:\n  - {topics: [ce], format: cloudevents, workspace: 'field:workspace'}\n",
        "ce",
    )


def rejected(dec: InputDecoder, value: Any, headers: Any = None, key: bytes | None = None) -> str:
    with pytest.raises(InvalidEventError) as caught:
        dec.explain(record(dec.spec.mappings[0].topics[0], key, headers), orjson.dumps(value))
    reason = str(caught.value)
    assert "\n" not in reason
    return reason


def with_after(**columns: Any) -> dict[str, Any]:
    return {**CHANGE, "after": {**CHANGE["after"], **columns}}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (with_after(tenant=""), "'workspace' is required"),
        (with_after(tenant="   "), "'workspace' is required"),
        (with_after(tenant="x" * 201), "'workspace' is required"),
        (with_after(tenant=["acme"]), "no workspace at field:row.tenant"),
        ({**CHANGE, "source": {**CHANGE["source"], "table": "bad table!"}}, "'event' is required"),
        ({**CHANGE, "after": ["not", "a", "row"]}, "without an 'after' row"),
        ({**CHANGE, "op": ["u"]}, "'op' must be c, u, d or r"),
    ],
)
def test_debezium_bad_parts_from_the_record(debezium, change, reason):
    assert reason in rejected(debezium, change, key=b'{"id": 7}')


def test_debezium_parts_it_builds_have_their_types(debezium):
    # A key that is no usable id, a table that is no string: the envelope has no such parts
    # rather than parts of the wrong type.
    source = {**CHANGE["source"], "table": 7}
    change = {**CHANGE, "source": source, "after": {"name": "A", "tenant": "acme"}}
    _, event = debezium.explain(record("cdc", b'{"id": [1]}'), orjson.dumps(change))
    assert event.entity is None
    assert "id" not in event.data["record"]
    assert isinstance(event.data["id"], str)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({**CLOUDEVENT, "id": 7}, "validation: 'id' must be a string"),
        ({**CLOUDEVENT, "id": {"n": 1}}, "validation: 'id' must be a string"),
        ({**CLOUDEVENT, "type": 7}, "'type' must be a string"),
        ({**CLOUDEVENT, "type": "a b"}, "'event' is required"),
        ({**CLOUDEVENT, "workspace": ""}, "'workspace' is required"),
        ({**CLOUDEVENT, "time": ["noon"]}, "'timestamp' must be an RFC 3339 string"),
        ({**CLOUDEVENT, "time": "yesterday"}, "'timestamp' is not RFC 3339"),
        ({**CLOUDEVENT, "data": [1]}, "data must be a JSON object"),
    ],
)
def test_cloudevents_structured_bad_attributes(cloudevents, event, reason):
    assert reason in rejected(cloudevents, event, STRUCTURED)


def test_cloudevents_binary_bad_headers(cloudevents):
    headers = [("ce_type", b"a.b"), ("ce_workspace", b"acme"), ("ce_id", b"\xff")]
    assert "header ce_id is not UTF-8" in rejected(cloudevents, {}, headers)
    headers = [("ce_type", b"a.b"), ("ce_workspace", b"acme"), ("ce_time", b"noon")]
    assert "'timestamp' is not RFC 3339" in rejected(cloudevents, {}, headers)


def test_cloudevents_binary_extensions_in_header_order(cloudevents):
    headers = [
        ("ce_zone", b"eu"),
        ("ce_type", b"a.b"),
        ("ce_workspace", b"acme"),
        ("ce_zone", b"us"),  # repeated: the last value, the first place (as a dict keeps it)
        ("ce_id", b"e-1"),
    ]
    _, event = cloudevents.explain(record("ce", None, headers), b'{"n": 1}')
    assert list(event.data["extensions"].items()) == [("zone", "us"), ("workspace", "acme")]
