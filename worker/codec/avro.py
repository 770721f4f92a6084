"""Avro with single-object encoding: every record carries its schema's fingerprint.

Layout (Avro spec, "Single-object encoding"): marker ``C3 01``, the 8-byte little-endian
CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form, then the binary body. Any
reader with our ``schemas/`` can decode any of our topics without a registry.

Schemas only grow compatibly. Every released version is kept in ``schemas/history/``; a
record written with one of them is decoded with it as the writer's schema and the current
one as the reader's (Avro schema resolution: fields added since take their defaults).
"""

from __future__ import annotations

import io
import json
from importlib import resources
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

from worker.errors import InvalidInput

__all__ = ["MARKER", "AvroCodec", "CodecError", "schema_dir"]

MARKER = b"\xc3\x01"
# Load order: a schema may only name types defined by the ones before it.
SCHEMA_FILES = (
    "delivery_task",
    "attempt",
    "dead_letter",
    "invalid_event",
    "parked",
    "redrive",
    "progress",
    "health",
    "subscription",
    "event",
    "idempotency",
    "api_token",
    "portal_link",
    "source",
    "incoming_mark",
)


class CodecError(InvalidInput):
    """A record could not be encoded or decoded; the message says why in one line."""


def schema_dir() -> Path:
    """``worker/schemas`` in an installed wheel, else the repository's ``schemas/``."""
    packaged = resources.files("worker").joinpath("schemas")
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "schemas"


class AvroCodec:
    """Every schema in ``schemas/``, by record name and by fingerprint. Build once."""

    def __init__(self, directory: Path | None = None) -> None:
        directory = directory or schema_dir()
        named: dict[str, Any] = {}
        self._by_name: dict[str, tuple[Any, bytes]] = {}
        # fingerprint -> (record name, writer schema, reader schema or None when the same)
        self._by_fingerprint: dict[bytes, tuple[str, Any, Any]] = {}
        for stem in SCHEMA_FILES:
            raw = json.loads((directory / f"{stem}.avsc").read_text())
            parsed = parse_schema(raw, named_schemas=named)
            name = raw["name"]
            canonical = to_parsing_canonical_form(parsed)
            header = MARKER + bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
            self._by_name[name] = (parsed, header)
            self._by_fingerprint[header[2:]] = (name, parsed, None)
        history = directory / "history"
        for path in sorted(history.glob("*.avsc")) if history.is_dir() else ():
            raw = json.loads(path.read_text())
            if raw["name"] not in self._by_name:
                raise CodecError(f"{path.name}: no current schema named {raw['name']!r}")
            old = parse_schema(raw, named_schemas={})
            key = bytes.fromhex(fingerprint(to_parsing_canonical_form(old), "CRC-64-AVRO"))
            self._by_fingerprint.setdefault(key, (raw["name"], old, self._by_name[raw["name"]][0]))

    def header(self, name: str) -> bytes:
        return self._by_name[name][1]

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        try:
            parsed, header = self._by_name[name]
        except KeyError:
            raise CodecError(f"unknown schema {name!r}") from None
        out = io.BytesIO()
        out.write(header)
        try:
            schemaless_writer(out, parsed, record)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise CodecError(f"cannot encode {name}: {exc}") from None
        return out.getvalue()

    def decode(self, data: bytes | None) -> tuple[str, dict[str, Any]]:
        if not data or len(data) < 10 or data[:2] != MARKER:
            raise CodecError("not Avro single-object encoding (no C3 01 marker)")
        found = self._by_fingerprint.get(data[2:10])
        if found is None:
            raise CodecError(f"unknown Avro schema fingerprint {data[2:10].hex()}")
        name, writer, reader = found
        stream = io.BytesIO(data)
        stream.seek(10)
        try:
            record = schemaless_reader(stream, writer, reader)
        except Exception as exc:  # fastavro raises many types on garbage input
            raise CodecError(f"malformed {name} record: {type(exc).__name__}") from None
        if stream.tell() != len(data):
            raise CodecError(f"malformed {name} record: {len(data) - stream.tell()} trailing bytes")
        if not isinstance(record, dict):
            raise CodecError(f"malformed {name} record")
        return name, record

    def decode_as(self, name: str, data: bytes | None) -> dict[str, Any]:
        found, record = self.decode(data)
        if found != name:
            raise CodecError(f"expected a {name} record, found {found}")
        return record
