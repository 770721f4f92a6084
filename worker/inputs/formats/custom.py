"""``custom``: any JSON (or framed) value, each part of the envelope named by a source."""

from __future__ import annotations

from typing import Any

from worker.codec.events import InvalidEventError
from worker.inputs.connect import PayloadReader
from worker.inputs.formats import InputFormat, Mapped
from worker.inputs.options import Options
from worker.inputs.record import InputRecord
from worker.inputs.sources import MISSING, KeyReader, Source

__all__ = ["build"]

_TEXT_PARTS = ("event", "id", "user")


class Custom:
    empty = "invalid"
    typed = False
    payload: PayloadReader | None = None

    def __init__(self, parts: dict[str, Source]) -> None:
        self._parts = parts

    def map(self, record: InputRecord, key: KeyReader) -> Mapped:
        value = record.value
        envelope: dict[str, Any] = {}
        for name, source in self._parts.items():
            if name in _TEXT_PARTS:
                text = source.text(record, value, key)
                if text is not None:
                    envelope[name] = text
                continue
            found = source.get(record, value, key)
            if found is MISSING or found is None:
                continue
            envelope[name] = found
        if "record" not in self._parts:
            if not isinstance(value, dict):
                raise InvalidEventError(
                    f"custom: the value is not a JSON object ({type(value).__name__}) and "
                    "no 'record' source is set"
                )
            envelope["record"] = value
        return envelope, value


def build(options: Options) -> InputFormat:
    parts: dict[str, Source] = {}
    for name in ("event", "record", "id", "timestamp", "user", "changes"):
        source = options.source(name, required=name == "event")
        if source is not None:
            parts[name] = source
    return Custom(parts)
