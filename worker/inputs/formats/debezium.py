"""``debezium``: Debezium change events (JSON converter with or without schemas, or Avro
through a Schema Registry) as ``record.created`` / ``updated`` / ``deleted``. It reads only
the payload of a value with its schema (``payload``): the decoder hands it the change.

Like Debezium's own ``ExtractNewRecordState`` transform, the row is ``after`` (``before`` for a
delete); unlike it, an update also carries ``changes``: the columns whose value differs
between ``before`` and ``after`` (whole only with ``REPLICA IDENTITY FULL``).
"""

from __future__ import annotations

from typing import Any

from worker.codec.events import InvalidEventError
from worker.inputs import connect
from worker.inputs.formats import InputFormat, Mapped, SkippedError
from worker.inputs.options import Options
from worker.inputs.record import InputRecord
from worker.inputs.sources import MISSING, KeyReader, Source

__all__ = ["build", "changed_columns"]

_ACTIONS = {"c": "created", "u": "updated", "d": "deleted", "r": "created"}
_RECORD_EVENTS = {action: f"record.{action}" for action in _ACTIONS.values()}
_ABSENT = object()


def changed_columns(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``{column: {"old", "new"}}`` for every column whose value differs (a column only on
    one side counts as changed from or to null)."""
    get = before.get
    changes: dict[str, Any] = {}
    only_after = 0
    for name, new in after.items():
        old = get(name, _ABSENT)
        if old is _ABSENT:
            only_after += 1
            changes[name] = {"old": None, "new": new}
        elif old != new:
            changes[name] = {"old": old, "new": new}
    # Columns only in ``before``: there are some exactly when the shared ones are fewer.
    if len(before) > len(after) - only_after:
        for name, old in before.items():
            if name not in after:
                changes[name] = {"old": old, "new": None}
    return changes


class Debezium:
    empty = "skip"  # the tombstone after a delete
    typed = True  # every part built here, or checked as it was read

    def __init__(self, *, snapshot: str, events: str, entity: Source | None) -> None:
        self.payload: connect.PayloadReader | None = connect.PayloadReader()
        self._key_payload = connect.PayloadReader()
        self._snapshot = snapshot
        self.by_entity = events == "entity"
        self._entity = entity

    def map(self, record: InputRecord, key: KeyReader) -> Mapped:
        change = record.value  # the payload (the decoder unwrapped it)
        if not isinstance(change, dict):
            raise InvalidEventError("debezium: the value is not a change event object")
        op = change.get("op")
        action = _ACTIONS.get(op) if type(op) is str else None
        if action is None:
            if op in ("t", "m"):
                raise SkippedError(f"debezium op {op!r} (truncate or message) is not a row change")
            raise InvalidEventError(f"debezium: 'op' must be c, u, d or r, got {op!r:.40}")
        if op == "r" and self._snapshot == "skip":
            raise SkippedError("debezium snapshot read (snapshot: skip)")
        before, after = change.get("before"), change.get("after")
        row = before if op == "d" else after
        if not isinstance(row, dict):
            side = "before" if op == "d" else "after"
            raise InvalidEventError(f"debezium: op {op!r} without an '{side}' row")
        found = change.get("source")
        source: dict[str, Any] = found if isinstance(found, dict) else {}
        # field: paths read the change event, plus "row": the row whatever the op, so a
        # delete finds its workspace column as an insert does. (The change is our own
        # decoded copy: adding to it costs less than copying it.)
        change["row"] = row
        if self._entity is not None:
            entity = self._entity.text(record, change, key)
        else:
            table = source.get("table")
            entity = table if isinstance(table, str) and table else None
        raw = record.key  # with its schema, read by its payload as the value is
        by_payload = self._key_payload(raw) if raw and raw.startswith(connect.PREFIX) else MISSING
        ident = _key_text(connect.unwrap(key(record)) if by_payload is MISSING else by_payload)
        if ident is not None and "id" not in row:
            row = {**row, "id": ident[1]}
        event = f"{entity}.{action}" if self.by_entity and entity else _RECORD_EVENTS[action]
        envelope: dict[str, Any] = {"event": event, "record": row}
        if entity:
            envelope["entity"] = entity
        if op == "u" and isinstance(before, dict) and isinstance(after, dict):
            envelope["changes"] = changed_columns(before, after)
        stamp = source.get("ts_ms", change.get("ts_ms"))
        if type(stamp) is int and stamp > 0:
            envelope["timestamp"] = stamp  # Unix ms: the decoder formats it
        if ident is not None:
            envelope["ordering_key"] = f"{entity}/{ident[0]}" if entity else "/" + ident[0]
        return envelope, change


def _key_text(key: Any) -> tuple[str, Any] | None:
    """The primary key as ``(text, record id)``: its values joined by ``,`` in the key's field
    order, and the one value itself when there is one (None: no usable key)."""
    if type(key) is dict and len(key) == 1:  # the usual key: one column, a number or text
        for value in key.values():
            kind = type(value)
            if kind is str:
                return value, value
            if kind is int or kind is float:
                return str(value), value
    if not isinstance(key, dict) or not key:
        return None
    values = list(key.values())
    for value in values:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            return None
    if len(values) == 1:
        return str(values[0]), values[0]
    text = ",".join(str(v) for v in values)
    return text, text


def build(options: Options) -> InputFormat:
    return Debezium(
        snapshot=options.choice("snapshot", ("created", "skip"), "created"),
        events=options.choice("events", ("record", "entity"), "record"),
        entity=options.source("entity"),
    )
