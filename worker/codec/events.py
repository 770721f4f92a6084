"""Input events: decode (JSON or Avro single-object) and validate the envelope.

Never raises anything but :class:`InvalidEventError`, whatever the bytes: the router sends
the record to ``invalid-events`` with the message.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Any

import orjson

from worker.codec.avro import MARKER, AvroCodec, CodecError
from worker.errors import InvalidInput
from worker.model import Event

__all__ = [
    "InvalidEventError",
    "decode_event",
    "decode_value",
    "encode_event_avro",
    "record_time",
    "validate_envelope",
]

_EVENT_TYPE = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")
# Event types already matched: a set lookup instead of the pattern for the few a stream has.
# Bounded, since they come from producers (past the bound, new ones are matched every time).
_VALID_TYPES: set[str] = set()
_MAX_VALID_TYPES = 4096
_MAX_NAME = 200
# The optional parts with a type: (name, type, the type in an error message).
_TYPED_PARTS: tuple[tuple[str, type, str], ...] = (
    ("id", str, "a string"),
    ("entity", str, "a string"),
    ("user", str, "a string"),
    ("record", dict, "an object"),
    ("changes", dict, "an object"),
)
# Below 2**32 s (year 2106) the float ms / 1000 is within a quarter of a microsecond of the
# exact time, so fromtimestamp's rounding to microseconds lands on the exact millisecond.
# Beyond it the float path is sometimes a millisecond early, and stays the rule.
_EXACT_MS = 2**32 * 1000
_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))  # record_time's endings, made once


class InvalidEventError(InvalidInput):
    """The record is not a valid event; the message is one line saying why."""


def decode_event(
    value: bytes | None,
    *,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int,
    max_bytes: int,
    avro: AvroCodec,
) -> Event:
    if not value:
        raise InvalidEventError("empty record: no value")
    if len(value) > max_bytes:
        raise InvalidEventError(
            f"too_large: event is {len(value)} bytes, above the limit of {max_bytes}"
        )
    data = decode_value(value, avro)
    if not isinstance(data, dict):
        raise InvalidEventError(f"validation: expected a JSON object, got {type(data).__name__}")
    return validate_envelope(data, topic, partition, offset, timestamp_ms)


def decode_value(value: bytes, avro: AvroCodec) -> Any:
    """A value without Schema Registry framing: our Avro single-object Event, else JSON."""
    if value[:2] == MARKER:
        return _from_avro(value, avro)
    if value[:1] == b"\x00" and len(value) >= 5:
        raise InvalidEventError(
            "decode: Confluent Schema Registry framing needs a WEBHOOK_INPUTS mapping"
        )
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InvalidEventError(f"decode: not valid UTF-8 JSON: {exc}") from None


def _from_avro(value: bytes, avro: AvroCodec) -> dict[str, Any]:
    try:
        record = avro.decode_as("Event", value)
    except CodecError as exc:
        raise InvalidEventError(f"decode: {exc}") from None
    for name in ("record", "changes"):
        text = record.get(name)
        if text is None:
            record.pop(name, None)
            continue
        try:
            record[name] = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise InvalidEventError(f"decode: Avro field {name} is not JSON") from None
    return {k: v for k, v in record.items() if v is not None}


def validate_envelope(
    data: dict[str, Any],
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int,
    event_ms: int | None = None,
    *,
    typed: bool = False,
) -> Event:
    """The envelope checked and completed (``id`` and ``timestamp`` filled in when missing).
    ``event_ms``: the time ``data["timestamp"]`` was formatted from, when the caller made it
    (an input format that read Unix milliseconds), so it is not parsed back. ``typed``: the
    caller (an input format) made sure ``id``, ``entity`` and ``user`` are strings and
    ``record`` and ``changes`` objects where present, so only ``event``, ``workspace`` and
    ``timestamp`` are checked here (they come from the record whatever the format)."""
    event = data.get("event")
    if type(event) is not str or event not in _VALID_TYPES:
        if not isinstance(event, str) or not _EVENT_TYPE.match(event):
            raise InvalidEventError(
                "validation: 'event' is required: a string of letters, digits and . _ : -"
            )
        if len(_VALID_TYPES) < _MAX_VALID_TYPES:
            _VALID_TYPES.add(event)
    workspace = data.get("workspace")
    if not isinstance(workspace, str) or not workspace.strip() or len(workspace) > _MAX_NAME:
        raise InvalidEventError("validation: 'workspace' is required: a non-empty string")
    if not typed:
        for name, kind, what in _TYPED_PARTS:
            value = data.get(name)
            if value is not None and not isinstance(value, kind):
                raise InvalidEventError(f"validation: '{name}' must be {what}")
    event_id = data.get("id")
    if not event_id:
        event_id = f"{topic}-{partition}-{offset}"
        data["id"] = event_id
    stamp = data.get("timestamp")
    if stamp is None:
        data["timestamp"] = record_time(timestamp_ms)
        event_ms = timestamp_ms
    elif event_ms is None:
        event_ms = _parse_time(stamp)
    entity = data.get("entity")
    # Positional: a slots dataclass takes them in half the time of keywords.
    return Event(
        event_id,
        event,
        workspace,
        entity if isinstance(entity, str) else None,
        event_ms,
        data,
        f"{topic}/{partition}/{offset}",
    )


def record_time(timestamp_ms: int) -> str:
    """The record's timestamp as RFC 3339 in UTC with milliseconds: ``2024-05-01T12:00:00.123Z``.

    Filled into every event that carries no ``timestamp``, so it is on the hot path: the
    seconds are formatted once per distinct second (``isoformat`` costs ~2 us) and the
    milliseconds appended. The text is exactly what
    ``datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")`` (with ``Z``)
    gives, which stays the rule outside the range where the two provably agree.
    """
    if 0 <= timestamp_ms < _EXACT_MS:
        return _utc_second(timestamp_ms // 1000) + _MILLIS[timestamp_ms % 1000]
    try:
        when = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    except (ValueError, OverflowError, OSError):  # e.g. a producer that wrote microseconds
        raise InvalidEventError(
            f"validation: no 'timestamp' and the record's time {timestamp_ms} ms is out of range"
        ) from None
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@functools.lru_cache(maxsize=1024)
def _utc_second(seconds: int) -> str:
    """``2024-05-01T12:00:00`` for a whole second since the epoch."""
    return datetime.fromtimestamp(seconds, UTC).isoformat()[:19]


def _parse_time(stamp: Any) -> int:
    if not isinstance(stamp, str):
        raise InvalidEventError("validation: 'timestamp' must be an RFC 3339 string")
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidEventError(
            f"validation: 'timestamp' is not RFC 3339: {stamp[:40]!r}"
        ) from None
    if when.tzinfo is None:
        raise InvalidEventError("validation: 'timestamp' needs a UTC offset (e.g. Z)")
    return int(when.timestamp() * 1000)


def encode_event_avro(data: dict[str, Any], avro: AvroCodec) -> bytes:
    """The producer side of the Avro form (used by ``events emit --format avro``)."""
    record = {
        "id": data.get("id"),
        "event": data["event"],
        "workspace": data["workspace"],
        "entity": data.get("entity"),
        "timestamp": data.get("timestamp"),
        "user": data.get("user"),
        "record": orjson.dumps(data["record"]).decode() if "record" in data else None,
        "changes": orjson.dumps(data["changes"]).decode() if "changes" in data else None,
    }
    return avro.encode("Event", record)
