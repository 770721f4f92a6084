"""The input formats: each maps one decoded record to our envelope (a dict the router
validates). One small module a format, all behind :class:`InputFormat`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from worker.inputs.connect import PayloadReader
from worker.inputs.options import Options
from worker.inputs.record import InputRecord
from worker.inputs.sources import KeyReader

__all__ = ["FORMATS", "InputFormat", "Mapped", "SkippedError"]

Mapped = tuple[dict[str, Any], Any]  # (the envelope, the root that field: sources read)


class SkippedError(Exception):
    """Not an event (a tombstone, a snapshot read when snapshots are skipped): nothing is
    delivered and the offset moves on. The message says why."""


class InputFormat(Protocol):
    """A format, built once from its mapping's options."""

    # What a record without a value is: "skip" (a tombstone), "invalid", or "allowed" (the
    # format maps it, e.g. a CloudEvent without data).
    empty: str
    # A reader: the format reads only the payload of a Kafka Connect JSON value written with
    # its schema (``{"schema", "payload"}``); the decoder hands it that payload, parsed
    # without the schema by this reader where it can (worker/inputs/connect.py). None: the
    # whole value, as decoded.
    payload: PayloadReader | None
    # True: the envelope's ``id``, ``entity`` and ``user`` are strings and its ``record`` and
    # ``changes`` objects where present, as the format checked or built them; the decoder
    # then checks only what every format takes from the record (event type, workspace,
    # timestamp: worker.codec.events.validate_envelope).
    typed: bool

    def map(self, record: InputRecord, key: KeyReader) -> Mapped:
        """The envelope for ``record`` (whose ``value`` is decoded). Raises
        :class:`SkippedError`, or InvalidEventError with the reason for a bad record."""


def _formats() -> dict[str, Callable[[Options], InputFormat]]:
    from worker.inputs.formats import cloudevents, custom, debezium, envelope

    return {
        "envelope": envelope.build,
        "debezium": debezium.build,
        "cloudevents": cloudevents.build,
        "custom": custom.build,
    }


FORMATS: dict[str, Callable[[Options], InputFormat]] = _formats()
