"""Wire formats: single-object encoding, record round trips, hostile input never crashes."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.codec.avro import AvroCodec, CodecError
from worker.codec.events import InvalidEventError, decode_event, encode_event_avro
from worker.codec.records import RecordCodec
from worker.model import Attempt, DeadLetter, DeliveryTask, InvalidRecord
from worker.subscriptions.model import Condition, SecretEntry, Status, Subscription

AVRO = AvroCodec()
CODEC = RecordCodec(AVRO)
TASK = DeliveryTask(
    "msg_1",
    "sub_1",
    "acme",
    "evt_1",
    "contact.created",
    b'{"a":1}',
    seq=7,
    attempt=2,
    hop=3,
    due_ms=99,
    last_status=503,
    last_error="x",
)


def decode(value: bytes | None, max_bytes: int = 1_000_000):
    return decode_event(
        value,
        topic="events",
        partition=1,
        offset=42,
        timestamp_ms=1_700_000_000_000,
        max_bytes=max_bytes,
        avro=AVRO,
    )


def test_single_object_header_follows_the_spec():
    data = CODEC.encode_task(TASK)
    assert data[:2] == b"\xc3\x01"
    assert AVRO.decode(data)[0] == "DeliveryTask"
    # The Avro spec's test vector: CRC-64-AVRO of "int" is 0x7275d51a3f395c8f (little-endian).
    from fastavro.schema import fingerprint

    assert bytes.fromhex(fingerprint('"int"', "CRC-64-AVRO")) == (0x7275D51A3F395C8F).to_bytes(
        8, "little"
    )


def test_round_trips():
    assert CODEC.decode_task(CODEC.encode_task(TASK)) == TASK
    letter = DeadLetter(TASK, "client_error", 1, 5, 400, None, "nope")
    assert CODEC.decode_dead_letter(CODEC.encode_dead_letter(letter)) == letter
    attempt = Attempt(
        "msg_1", "sub_1", "acme", "evt_1", "x", 1, 5, 1.5, "https://x", "success", 200
    )
    assert CODEC.decode_attempt(CODEC.encode_attempt(attempt)) == attempt
    invalid = InvalidRecord("bad", "events", 0, 1, 2, b"k", b"v", {"h": b"1"})
    assert CODEC.decode_invalid(CODEC.encode_invalid(invalid)) == invalid
    assert CODEC.decode_parked(CODEC.encode_parked("head", TASK)) == ("head", TASK)
    sub = Subscription(
        "sub_1",
        "acme",
        "https://x",
        ("a.*",),
        (SecretEntry("whsec_x", 5),),
        conditions=(Condition("a.b", "in", ("1", "2")),),
        fields=("id",),
        headers=(("x-a", "b"),),
        status=Status.BLOCKED,
        entity="contact",
    )
    assert CODEC.decode_subscription(CODEC.encode_subscription(sub)) == sub


def test_wrong_schema_is_a_codec_error():
    with pytest.raises(CodecError, match="expected a DeadLetter"):
        CODEC.decode_dead_letter(CODEC.encode_task(TASK))


def test_json_event_fills_id_and_timestamp():
    event = decode(b'{"event": "contact.created", "workspace": "acme"}')
    assert event.id == "events-1-42"
    assert event.data["timestamp"].startswith("2023-11-14T22:13:20")
    assert event.timestamp_ms == 1_700_000_000_000


def test_avro_event_round_trip():
    data = {
        "id": "e1",
        "event": "deal.updated",
        "workspace": "acme",
        "entity": "deal",
        "timestamp": "2026-03-31T14:30:00Z",
        "record": {"id": "a"},
        "changes": {"stage": {"old": "a", "new": "b"}},
    }
    event = decode(encode_event_avro(data, AVRO))
    assert event.data == data
    assert event.entity == "deal"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"", "empty"),
        (b"{", "not valid UTF-8 JSON"),
        (b"[1]", "expected a JSON object"),
        (b'{"workspace": "a"}', "'event' is required"),
        (b'{"event": "a.b"}', "'workspace' is required"),
        (b'{"event": "a.b", "workspace": "w", "timestamp": "yesterday"}', "RFC 3339"),
        (b'{"event": "a.b", "workspace": "w", "record": [1]}', "'record' must be an object"),
        (b"\x00\x00\x00\x00\x01abc", "Confluent"),
        (b"\xc3\x01" + b"\x00" * 8, "unknown Avro schema"),
    ],
)
def test_invalid_events_say_why(value, message):
    with pytest.raises(InvalidEventError, match=message):
        decode(value)


def test_oversized_event_is_refused():
    with pytest.raises(InvalidEventError, match="above the limit of 10"):
        decode(b'{"event": "a.b", "workspace": "w"}', max_bytes=10)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(value):
    with contextlib.suppress(InvalidEventError):
        decode(value)
    with contextlib.suppress(CodecError):
        AVRO.decode(value)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    JSON,
    st.dictionaries(
        st.sampled_from(["event", "workspace", "id", "timestamp", "record", "changes", "entity"]),
        JSON,
    ),
)
def test_arbitrary_json_is_an_event_or_a_clear_error(value, envelope):
    for candidate in (value, envelope):
        try:
            event = decode(json.dumps(candidate).encode())
        except InvalidEventError as exc:
            assert "\n" not in str(exc)
        else:
            assert event.event and event.workspace


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=2, max_value=200), st.binary(min_size=1, max_size=8))
def test_mutated_avro_never_crashes(position, junk):
    good = encode_event_avro({"event": "a.b", "workspace": "w", "record": {"id": 1}}, AVRO)
    cut = min(position, len(good))
    for value in (good[:cut], good[:cut] + junk, good[:cut] + junk + good[cut:]):
        with contextlib.suppress(InvalidEventError):
            decode(value)


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_any_record_time_gives_an_event_or_a_clear_error(timestamp_ms):
    # A producer writing microseconds (or garbage) as the record time must not crash the router.
    try:
        event = decode_event(
            b'{"event": "a.b", "workspace": "w"}',
            topic="events",
            partition=0,
            offset=0,
            timestamp_ms=timestamp_ms,
            max_bytes=1000,
            avro=AVRO,
        )
    except InvalidEventError as exc:
        assert "out of range" in str(exc)
    else:
        assert event.timestamp_ms == timestamp_ms


def test_record_time_past_year_9999_is_invalid_not_a_crash():
    with pytest.raises(InvalidEventError, match="out of range"):
        decode_event(
            b'{"event": "a.b", "workspace": "w"}',
            topic="events",
            partition=0,
            offset=0,
            timestamp_ms=1_700_000_000_000_000,  # microseconds written as milliseconds
            max_bytes=1000,
            avro=AVRO,
        )
