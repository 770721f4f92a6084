"""Records written with a released schema stay readable after the schema grew: each file in
schemas/history is a writer schema the codec resolves to the current reader schema."""

from __future__ import annotations

import io
import json

import pytest
from fastavro import parse_schema, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

from worker.codec.avro import MARKER, AvroCodec, schema_dir
from worker.codec.records import RecordCodec
from worker.subscriptions.model import Status

HISTORY = sorted((schema_dir() / "history").glob("*.avsc"))


def _encode_with(path_schema: dict[str, object], record: dict[str, object]) -> bytes:
    parsed = parse_schema(path_schema, named_schemas={})
    header = MARKER + bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
    out = io.BytesIO(header)
    out.seek(len(header))
    schemaless_writer(out, parsed, record)
    return out.getvalue()


def test_there_is_history_and_every_file_names_a_current_schema() -> None:
    assert HISTORY, "schemas/history holds the released versions"
    codec = AvroCodec()
    for path in HISTORY:
        name = json.loads(path.read_text())["name"]
        assert codec.header(name)  # a current schema of that name exists


def test_a_subscription_written_by_the_first_release_reads_with_defaults() -> None:
    v1 = json.loads((schema_dir() / "history" / "subscription.v1.avsc").read_text())
    data = _encode_with(
        v1,
        {
            "id": "sub_1",
            "workspace": "acme",
            "url": "https://example.com/h",
            "events": ["contact.*"],
            "secrets": [{"secret": "whsec_AAAA", "expires_ms": None}],
            "ordered": False,
            "status": "BLOCKED",
            "created_ms": 5,
            "updated_ms": 6,
        },
    )
    sub = RecordCodec(AvroCodec()).decode_subscription(data)
    assert (sub.id, sub.workspace, sub.events, sub.ordered) == (
        "sub_1",
        "acme",
        ("contact.*",),
        False,
    )
    assert sub.status is Status.BLOCKED
    assert sub.status_reason is None and sub.changed_by is None and sub.signing_keys == ()
    assert sub.secrets[0].secret == "whsec_AAAA"


def test_every_history_schema_differs_from_the_current_one() -> None:
    """A history file identical to the current schema would be a copy, not a release."""
    codec = AvroCodec()
    for path in HISTORY:
        raw = json.loads(path.read_text())
        parsed = parse_schema(raw, named_schemas={})
        old = MARKER + bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
        assert old != codec.header(raw["name"]), path.name


def test_a_history_file_without_a_current_schema_is_refused(
    tmp_path: pytest.TempPathFactory,
) -> None:
    from pathlib import Path

    directory = Path(str(tmp_path))
    for path in schema_dir().glob("*.avsc"):
        (directory / path.name).write_text(path.read_text())
    (directory / "history").mkdir()
    (directory / "history" / "ghost.v1.avsc").write_text(
        json.dumps({"type": "record", "name": "Ghost", "fields": []})
    )
    with pytest.raises(ValueError, match="Ghost"):
        AvroCodec(directory)


def _v1(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(
        (schema_dir() / "history" / f"{name}.v1.avsc").read_text()
    )
    return loaded


V1_TASK = {
    "delivery_id": "msg_1",
    "subscription_id": "sub_1",
    "workspace": "acme",
    "event_id": "evt_1",
    "event_type": "contact.updated",
    "body": b"{}",
    "ordered": True,
    "event_time_ms": 1,
    "created_ms": 2,
    "seq": 7,
    "attempt": 1,
    "hop": 1,
    "due_ms": 3,
    "last_status": 500,
    "last_error": None,
    "source": "events/0/7",
    "redrive_id": None,
}


def test_a_task_written_before_ordering_scopes_keeps_its_meaning() -> None:
    codec = RecordCodec(AvroCodec())
    ordered = codec.decode_task(_encode_with(_v1("delivery_task"), V1_TASK))
    assert (ordered.ordering, ordered.ordering_key, ordered.scope) == (None, None, "endpoint")
    assert (ordered.seq, ordered.hop, ordered.last_status) == (7, 1, 500)
    loose = codec.decode_task(_encode_with(_v1("delivery_task"), {**V1_TASK, "ordered": False}))
    assert loose.scope == "none"


def test_a_parked_entry_and_a_dead_letter_written_before_ordering_scopes_decode() -> None:
    codec = RecordCodec(AvroCodec())
    kind, task = codec.decode_parked(_encode_with(_v1("parked"), {"kind": "head", "task": V1_TASK}))
    assert kind == "head" and task.scope == "endpoint" and task.delivery_id == "msg_1"
    letter = codec.decode_dead_letter(
        _encode_with(
            _v1("dead_letter"),
            {"task": V1_TASK, "reason": "client_error", "attempts": 1, "failed_ms": 9},
        )
    )
    assert letter.reason == "client_error" and letter.task.scope == "endpoint"


def test_a_subscription_stored_before_ordering_scopes_keeps_its_behaviour() -> None:
    v1 = _v1("subscription")
    base = {
        "id": "sub_1",
        "workspace": "acme",
        "url": "https://example.com/h",
        "events": ["*"],
        "secrets": [{"secret": "whsec_AAAA", "expires_ms": None}],
    }
    codec = RecordCodec(AvroCodec())
    ordered = codec.decode_subscription(_encode_with(v1, {**base, "ordered": True}))
    assert (ordered.scope, ordered.in_flight_cap) == ("endpoint", 1)
    loose = codec.decode_subscription(_encode_with(v1, {**base, "ordered": False}))
    assert (loose.scope, loose.in_flight_cap) == ("none", None)  # no cap of its own


def test_new_fields_round_trip() -> None:
    from dataclasses import replace

    from worker.model import DeliveryTask

    codec = RecordCodec(AvroCodec())
    task = DeliveryTask("m", "s", "w", "e", "t", b"{}", ordering="key", ordering_key=b"contact/1")
    assert codec.decode_task(codec.encode_task(task)) == task
    sub = codec.decode_subscription(
        codec.encode_subscription(
            replace(
                codec.decode_subscription(
                    _encode_with(
                        _v1("subscription"),
                        {
                            "id": "s",
                            "workspace": "w",
                            "url": "https://x",
                            "events": ["*"],
                            "secrets": [],
                        },
                    )
                ),
                ordering="key",
                max_in_flight=25,
            )
        )
    )
    assert (sub.scope, sub.in_flight_cap, sub.ordering) == ("key", 25, "key")


def test_an_attempt_written_before_the_attempt_detail_reads_with_defaults() -> None:
    codec = RecordCodec(AvroCodec())
    old = {
        "delivery_id": "msg_1",
        "subscription_id": "sub_1",
        "workspace": "acme",
        "event_id": "evt_1",
        "event_type": "contact.updated",
        "attempt": 2,
        "started_ms": 5,
        "latency_ms": 1.5,
        "url": "https://example.com/h",
        "outcome": "retry",
        "status": 503,
        "error": None,
        "request_body": "{}",
        "response_body": "busy",
        "next_attempt_ms": 9,
    }
    attempt = codec.decode_attempt(_encode_with(_v1("attempt"), old))
    assert (attempt.delivery_id, attempt.attempt, attempt.next_attempt_ms) == ("msg_1", 2, 9)
    assert attempt.request_headers == {} and attempt.response_headers == {}
    assert (attempt.request_size, attempt.response_size, attempt.test) == (None, None, False)
    attempt.request_headers = {"webhook-signature": "v1,abc"}
    attempt.test = True
    assert codec.decode_attempt(codec.encode_attempt(attempt)) == attempt
