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
