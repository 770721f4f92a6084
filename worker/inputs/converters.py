"""Converters: a record's bytes to a value (Kafka Connect's sense of the word).

A value framed for a Schema Registry (magic byte 0, a 4-byte big-endian schema id) is read
with that schema; anything else is our Avro single-object Event or JSON. JSON never starts
with a zero byte, so the framing cannot be mistaken for a JSON value. A format that reads
only the payload of Kafka Connect's ``{"schema", "payload"}`` JSON gets that payload.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import io
import struct
import uuid
from typing import Any

import orjson
from fastavro import schemaless_reader

from worker.codec.avro import AvroCodec
from worker.codec.events import InvalidEventError, decode_value
from worker.inputs import connect
from worker.inputs.registry import SchemaRegistry
from worker.inputs.sources import MISSING

__all__ = ["decode_bytes", "decode_key", "jsonable"]

_schema_id = struct.Struct(">I").unpack_from  # the 4 bytes after the magic byte


def decode_bytes(
    data: bytes,
    registry: SchemaRegistry | None,
    avro: AvroCodec,
    *,
    payload: connect.PayloadReader | None = None,
) -> Any:
    """The value of ``data``; InvalidEventError for bytes that cannot be read,
    RegistryUnavailableError when the schema cannot be fetched now. With ``payload``: of a
    Kafka Connect JSON value with its schema, the payload alone, read by it
    (:mod:`worker.inputs.connect`)."""
    if data[0] == 0 and len(data) >= 5:  # framed (JSON never starts with a zero byte)
        if registry is None:
            raise InvalidEventError(
                "decode: Confluent Schema Registry framing and no WEBHOOK_SCHEMA_REGISTRY_URL"
            )
        value = _framed(data, registry)
    elif data[0] == 0xC3:  # our Avro single-object marker's first byte
        value = decode_value(data, avro)
    else:
        if payload is not None and data.startswith(connect.PREFIX):
            found = payload(data)
            if found is not MISSING:
                return found
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InvalidEventError(f"decode: not valid UTF-8 JSON: {exc}") from None
    return value if payload is None else connect.unwrap(value)


def decode_key(data: bytes | None, registry: SchemaRegistry | None) -> Any:
    """A key: framed, JSON, or else its text (a plain string key is common)."""
    if data is None:
        return None
    if registry is not None and len(data) >= 5 and data[0] == 0:  # framed
        return _framed(data, registry)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            return data.decode()
        except UnicodeDecodeError:
            return None


def _framed(data: bytes, registry: SchemaRegistry) -> Any:
    (schema_id,) = _schema_id(data, 1)
    schema = registry.schema(schema_id)
    if schema.kind == "JSON":
        try:
            return orjson.loads(data[5:])
        except orjson.JSONDecodeError as exc:
            raise InvalidEventError(
                f"decode: not valid JSON after the schema id {schema_id}: {exc}"
            ) from None
    stream = io.BytesIO(data)
    stream.seek(5)
    try:
        value = schemaless_reader(stream, schema.parsed, None)
    except Exception as exc:  # fastavro raises many types on bytes its schema cannot read
        raise InvalidEventError(
            f"decode: not readable with Avro schema id {schema_id}: {type(exc).__name__}"
        ) from None
    if stream.tell() != len(data):
        raise InvalidEventError(
            f"decode: {len(data) - stream.tell()} bytes left over after Avro schema id {schema_id}"
        )
    return value if schema.plain else jsonable(value)


def jsonable(value: Any) -> Any:
    """Avro's logical types as JSON: times RFC 3339, decimals and UUIDs text, bytes base64."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime.datetime):
        # timestamp-millis as milliseconds (``...00.001Z``), timestamp-micros in full.
        text = value.isoformat(timespec="milliseconds" if value.microsecond % 1000 == 0 else "auto")
        return text.replace("+00:00", "Z") if value.tzinfo is not None else text
    if isinstance(value, datetime.date | datetime.time | decimal.Decimal | uuid.UUID):
        return str(value) if not isinstance(value, datetime.date) else value.isoformat()
    if isinstance(value, tuple):  # a named union branch, (name, value)
        return jsonable(value[-1])
    return str(value)
