"""``envelope``: our own format (README, "Input events"); the value is the envelope."""

from __future__ import annotations

from worker.codec.events import InvalidEventError
from worker.inputs.connect import PayloadReader
from worker.inputs.formats import InputFormat, Mapped
from worker.inputs.options import Options
from worker.inputs.record import InputRecord
from worker.inputs.sources import KeyReader

__all__ = ["build"]


class Envelope:
    empty = "invalid"
    typed = False
    payload: PayloadReader | None = None

    def map(self, record: InputRecord, key: KeyReader) -> Mapped:
        value = record.value
        if not isinstance(value, dict):
            raise InvalidEventError(
                f"validation: expected a JSON object, got {type(value).__name__}"
            )
        return value, value


def build(options: Options) -> InputFormat:
    return Envelope()
