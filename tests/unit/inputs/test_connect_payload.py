"""Kafka Connect JSON values with their schema: a format with a payload reader (Debezium) gets
the payload parsed alone (worker/inputs/connect.py), and gets exactly what parsing the whole
value and unwrapping it gave, whatever ``,"payload":`` the schema or the payload hold, whether
the reader searched or used the last value's prefix; the other formats still see the whole
value."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st

from worker.codec.avro import AvroCodec
from worker.codec.events import InvalidEventError
from worker.config import Settings
from worker.inputs import InputDecoder, connect, load_inputs
from worker.inputs.converters import decode_bytes
from worker.inputs.record import InputRecord
from worker.inputs.sources import MISSING

AVRO = AvroCodec()
DATA = Path(__file__).with_name("data")
VALUE = (DATA / "debezium-update.value.json").read_bytes()
KEY = (DATA / "debezium-update.key.json").read_bytes()
TRAP = ',"payload":'  # the separator, as text


def whole(data: bytes) -> Any:
    """What the payload-only path must agree with: the whole value parsed, then unwrapped."""
    return connect.unwrap(decode_bytes(data, None, AVRO))


def payload_only(data: bytes, reader: connect.PayloadReader | None = None) -> Any:
    """Read by a new reader (a search), or by ``reader`` (its last prefix first)."""
    return decode_bytes(data, None, AVRO, payload=reader or connect.PayloadReader())


def wrapped(schema: Any, payload: Any) -> bytes:
    return orjson.dumps({"schema": schema, "payload": payload})


def test_a_captured_debezium_value_is_read_by_its_payload_alone():
    expected = orjson.loads(VALUE)["payload"]
    assert connect.payload(VALUE) == expected
    assert payload_only(VALUE) == expected == whole(VALUE)


SCHEMA = orjson.loads(VALUE)["schema"]
CHANGE = orjson.loads(VALUE)["payload"]
TRICKY_SCHEMAS = {
    # a struct with a field named payload (after the first key: preceded by a comma)
    "field key": {"type": "struct", "x": 1, "payload": {"type": "string"}, "fields": []},
    # a parameters map holding a "payload" key, as Debezium's column parameters might
    "parameters": {
        "type": "struct",
        "fields": [{"type": "string", "parameters": {"a": "b", "payload": "x"}, "field": "c"}],
    },
    # default values that hold the separator itself, and a bare '}' after it
    "defaults": {"type": "struct", "default": TRAP + "1}", "doc": '"}' + TRAP + "{}"},
    "nested default": {"fields": [{"default": {"k": 1, "payload": {"payload": 2}}}]},
    "real": SCHEMA,
}
TRICKY_PAYLOADS = {
    "change": CHANGE,
    # a column named payload, in before and after (so two matches after the separator)
    "payload column": {
        **CHANGE,
        "before": {**CHANGE["before"], "payload": {"a": 1}},
        "after": {**CHANGE["after"], "payload": TRAP},
    },
    "deep": {"a": 1, "payload": {"b": 2, "payload": {"c": 3, "payload": [4]}}},
    "string": TRAP,
    "null": None,
    "list": [1, {"x": 2, "payload": 3}],
    "number": 12.5,
    "nested envelope": {"schema": {}, "payload": {"op": "c"}},
}


@pytest.mark.parametrize("schema", TRICKY_SCHEMAS, ids=str)
@pytest.mark.parametrize("payload", TRICKY_PAYLOADS, ids=str)
def test_separators_inside_the_schema_or_the_payload_are_not_taken(schema, payload):
    data = wrapped(TRICKY_SCHEMAS[schema], TRICKY_PAYLOADS[payload])
    assert payload_only(data) == whole(data) == TRICKY_PAYLOADS[payload]
    # A reader that read another payload under the same schema reads it from that prefix.
    reader = connect.PayloadReader()
    assert payload_only(wrapped(TRICKY_SCHEMAS[schema], {"op": "c"}), reader) == {"op": "c"}
    assert payload_only(data, reader) == TRICKY_PAYLOADS[payload]


def test_a_reader_reads_from_the_last_prefix_and_searches_when_it_does_not_fit():
    reader = connect.PayloadReader()
    first, second = {**CHANGE, "op": "c"}, {**CHANGE, "op": "d"}
    assert payload_only(wrapped(SCHEMA, first), reader) == first
    assert reader._prefix == wrapped(SCHEMA, 0)[:-2]  # up to the separator, included
    assert payload_only(wrapped(SCHEMA, second), reader) == second
    # The same prefix and more than one value after it: searched, and so read whole.
    data = wrapped(SCHEMA, second)[:-1] + b',"x":1}'
    assert (
        payload_only(data, reader) == whole(data) == {"schema": SCHEMA, "payload": second, "x": 1}
    )
    # Another schema (another table on the topic): searched, and its prefix kept from then on.
    other = wrapped({"type": "struct", "name": "other"}, first)
    assert payload_only(other, reader) == first
    assert reader._prefix == other[: other.rindex(TRAP.encode()) + len(TRAP)]
    with pytest.raises(InvalidEventError, match="not valid UTF-8 JSON"):
        payload_only(other[:-3], reader)  # truncated: invalid as before


def test_matches_after_the_separator_are_tried_from_the_end():
    payload = {"a": {"x": 1, "payload": 1}, "b": {"x": 1, "payload": 2}}
    data = wrapped({"type": "struct"}, payload)
    assert data.count(TRAP.encode()) == 3
    assert connect.payload(data) == payload  # the third match from the end
    payload = {"c": {"x": 1, "payload": [{"y": 0, "payload": 1}]}, **payload}
    data = wrapped({"type": "struct"}, payload)
    assert data.count(TRAP.encode()) > connect.TRIES
    assert connect.payload(data) is MISSING  # too many: the caller parses it whole
    assert payload_only(data) == whole(data)


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"schema": SCHEMA, "payload": CHANGE}),  # ", " and ": "
        json.dumps({"schema": SCHEMA, "payload": CHANGE}, indent=2),
        '{"schema" :{},"payload":{"op":"c"}}',
        '{"schema":{} ,"payload":{"op":"c"}}',
        '{"schema":{},"payload" :{"op":"c"}}',
        '{"schema":{},"payload": {"op":"c"} }',
        '{"schema":{},"payload":{"op":"c"}}\n',
        ' {"schema":{},"payload":{"op":"c"}}',
        '{"payload":{"op":"c"},"schema":{}}',  # payload first
        '{"schema":{"a":{"b":1,"payload":2}},"payload" : {"op":"c"}}',
    ],
)
def test_whitespace_and_key_order_variants(text):
    data = text.encode()
    assert payload_only(data) == whole(data)
    assert payload_only(data) == json.loads(text)["payload"]


def test_values_that_are_not_connect_json_are_decoded_whole():
    for value in (CHANGE, {"schema": {}}, {"payload": 1}, {"schema": 1, "payload": 2, "x": 3}):
        data = orjson.dumps(value)
        assert payload_only(data) == whole(data) == connect.unwrap(value)
    assert connect.payload(orjson.dumps(CHANGE)) is MISSING


def test_truncated_values_are_invalid_as_before():
    for end in range(1, len(VALUE)):
        with pytest.raises(InvalidEventError, match="not valid UTF-8 JSON"):
            payload_only(VALUE[:end])


def test_the_schema_is_not_read():
    """Documented: Kafka Connect never writes these, and the payload is what is read."""
    data = b'{"schema":{not json},"payload":{"op":"c"}}'
    with pytest.raises(InvalidEventError):
        whole(data)
    assert payload_only(data) == {"op": "c"}


# -- properties ---------------------------------------------------------------------------

_TEXT = st.one_of(
    st.sampled_from(["payload", "schema", TRAP, TRAP + "1}", '"', "\\", "}", "{", ",", ":"]),
    st.text(max_size=6),
)
_KEY = st.one_of(st.sampled_from(["payload", "schema", "type", "field", "fields"]), _TEXT)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEY, inner, max_size=4),
    max_leaves=20,
)


READER = connect.PayloadReader()  # one for all the examples: prefixes from earlier ones


@settings(max_examples=500, deadline=None)
@given(schema=JSON, payload=JSON, again=JSON)
@example(schema={"a": 1, "payload": 1}, payload={"b": 1, "payload": 2}, again=None)
def test_any_schema_and_payload_read_as_the_whole_parse(schema, payload, again):
    data = wrapped(schema, payload)
    found = connect.payload(data)
    assert found is MISSING or found == payload
    assert payload_only(data) == whole(data) == payload
    assert payload_only(data, READER) == payload
    assert payload_only(wrapped(schema, again), READER) == again  # the same schema


def _after_separators(data: bytes) -> list[Any]:
    """What parses after each separator (to the last brace)."""
    found, at = [], data.find(TRAP.encode())
    while at >= 0:
        with contextlib.suppress(orjson.JSONDecodeError):
            found.append(orjson.loads(data[at + len(TRAP) : -1]))
        at = data.find(TRAP.encode(), at + 1)
    return found


def _mutated(data: bytes, at: int, cut: int, insert: bytes) -> bytes:
    at %= len(data) + 1
    return data[:at] + insert + data[at + cut :]


@settings(max_examples=1000, deadline=None)
@given(
    schema=JSON,
    payload=JSON,
    at=st.integers(0, 10_000),
    cut=st.integers(0, 3),
    insert=st.sampled_from([b"", TRAP.encode(), b"}", b'"', b",", b" ", b"1", b"\\"]),
)
def test_edited_values_read_as_the_whole_parse_when_they_are_valid_json(
    schema, payload, at, cut, insert
):
    data = _mutated(wrapped(schema, payload), at, cut, insert)
    assume(data)
    try:
        expected = whole(data)
    except InvalidEventError:
        # Invalid JSON: invalid here too, unless only the schema's text is broken (documented).
        try:
            found = payload_only(data)
        except InvalidEventError:
            event("invalid JSON: invalid")
            return
        event("invalid JSON: the schema's text broken, read by the payload")
        assert data.startswith(connect.PREFIX) and data.endswith(b"}")
        assert any(found == value for value in _after_separators(data))
        return
    event(f"valid JSON, {data.count(TRAP.encode())} separators")
    assert payload_only(data) == expected
    # A reader that has just read the value as it was before the edit.
    reader = connect.PayloadReader()
    assert payload_only(wrapped(schema, payload), reader) == payload
    assert payload_only(data, reader) == expected


# -- through the decoder ------------------------------------------------------------------

MAPPINGS = """
inputs:
  - {topics: [cdc], format: debezium, workspace: "field:row.tenant"}
  - {topics: [orders], format: custom, event: "const:order.placed", workspace: "field:schema.name",
     record: "field:payload"}
"""


@pytest.fixture
def mapped(tmp_path: Path) -> InputDecoder:
    path = tmp_path / "inputs.yaml"
    path.write_text(MAPPINGS)
    settings = Settings.from_env({}, inputs=str(path), input_topics="cdc,orders")
    return InputDecoder(avro=AVRO, max_bytes=100_000, spec=load_inputs(settings))


def record(topic: str, key: bytes | None = None) -> InputRecord:
    return InputRecord(topic, 0, 42, 1_774_967_400_000, key, None)


def explain(dec: InputDecoder, rec: InputRecord, value: Any) -> dict:
    _, event = dec.explain(rec, value if isinstance(value, bytes) else orjson.dumps(value))
    return event.data


def test_debezium_with_schemas_maps_as_without(mapped):
    with_schemas = explain(mapped, record("cdc", KEY), VALUE)
    without = explain(mapped, record("cdc", orjson.dumps({"id": 7})), CHANGE)
    assert with_schemas == without
    assert with_schemas["event"] == "record.updated"
    assert with_schemas["changes"] == {"stage": {"old": "qualification", "new": "proposal"}}


def test_debezium_with_a_payload_column_and_a_tricky_schema(mapped):
    payload = TRICKY_PAYLOADS["payload column"]
    data = wrapped(TRICKY_SCHEMAS["defaults"], payload)
    event = explain(mapped, record("cdc", KEY), data)
    assert event["record"]["payload"] == TRAP
    assert event["changes"]["payload"] == {"old": {"a": 1}, "new": TRAP}


def test_debezium_payload_that_is_not_a_change_is_invalid_as_before(mapped):
    for payload in (None, [1], "x", {"schema": {}, "payload": CHANGE}):
        with pytest.raises(InvalidEventError, match="debezium"):
            explain(mapped, record("cdc", KEY), wrapped(SCHEMA, payload))


def test_other_formats_still_read_the_whole_value(mapped):
    data = wrapped({"name": "acme"}, {"id": "o-1"})
    event = explain(mapped, record("orders"), data)
    assert event["workspace"] == "acme"
    assert event["record"] == {"id": "o-1"}
