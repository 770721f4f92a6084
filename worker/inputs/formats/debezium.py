"""``debezium``: Debezium change events (JSON converter with or without schemas, or Avro
through a Schema Registry) as ``record.created`` / ``updated`` / ``deleted``.

Like Debezium's own ``ExtractNewRecordState`` transform, the row is ``after`` (``before`` for a
delete); unlike it, an update also carries ``changes``: the columns whose value differs
between ``before`` and ``after`` (whole only with ``REPLICA IDENTITY FULL``).
"""

from __future__ import annotations

from typing import Any

from worker.codec.events import InvalidEventError, record_time
from worker.inputs.formats import InputFormat, Mapped, SkippedError
from worker.inputs.options import Options
from worker.inputs.record import InputRecord
from worker.inputs.sources import KeyReader, Source

__all__ = ["build", "changed_columns", "unwrap"]

_ACTIONS = {"c": "created", "u": "updated", "d": "deleted", "r": "created"}


def unwrap(value: Any) -> Any:
    """The payload of a JSON-converter value written with ``schemas.enable=true``."""
    if isinstance(value, dict) and len(value) == 2 and "schema" in value and "payload" in value:
        return value["payload"]
    return value


def changed_columns(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``{column: {"old", "new"}}`` for every column whose value differs."""
    return {
        name: {"old": before.get(name), "new": new}
        for name, new in after.items()
        if name not in before or before[name] != new
    } | {name: {"old": old, "new": None} for name, old in before.items() if name not in after}


class Debezium:
    empty = "skip"  # the tombstone after a delete

    def __init__(self, *, snapshot: str, events: str, entity: Source | None) -> None:
        self._snapshot = snapshot
        self._by_entity = events == "entity"
        self._entity = entity

    def map(self, record: InputRecord, key: KeyReader) -> Mapped:
        change = unwrap(record.value)
        if not isinstance(change, dict):
            raise InvalidEventError("debezium: the value is not a change event object")
        op = change.get("op")
        if op in ("t", "m"):
            raise SkippedError(f"debezium op {op!r} (truncate or message) is not a row change")
        if op not in _ACTIONS:
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
        entity = self._entity_of(record, {**change, "row": row}, source, key)
        row = dict(row)
        ident = _key_values(unwrap(key(record)))
        if ident is not None and "id" not in row:
            row["id"] = ident[0] if len(ident) == 1 else ",".join(str(v) for v in ident)
        action = _ACTIONS[op]
        envelope: dict[str, Any] = {
            "event": f"{entity if self._by_entity and entity else 'record'}.{action}",
            "record": row,
        }
        if entity:
            envelope["entity"] = entity
        if op == "u" and isinstance(before, dict) and isinstance(after, dict):
            envelope["changes"] = changed_columns(before, after)
        stamp = source.get("ts_ms", change.get("ts_ms"))
        if isinstance(stamp, int) and not isinstance(stamp, bool) and stamp > 0:
            envelope["timestamp"] = record_time(stamp)
        if ident is not None:
            envelope["ordering_key"] = f"{entity or ''}/" + ",".join(str(v) for v in ident)
        # field: paths read the change event, plus "row": the row whatever the op, so a
        # delete finds its workspace column as an insert does.
        return envelope, {**change, "row": row}

    def _entity_of(
        self, record: InputRecord, change: dict[str, Any], source: dict[str, Any], key: KeyReader
    ) -> str | None:
        if self._entity is not None:
            return self._entity.text(record, change, key)
        table = source.get("table")
        return table if isinstance(table, str) and table else None


def _key_values(key: Any) -> list[Any] | None:
    """The primary key's values, in the key's field order (None: no usable key)."""
    if isinstance(key, dict) and key:
        values = list(key.values())
        if all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in values):
            return values
    return None


def build(options: Options) -> InputFormat:
    return Debezium(
        snapshot=options.choice("snapshot", ("created", "skip"), "created"),
        events=options.choice("events", ("record", "entity"), "record"),
        entity=options.source("entity"),
    )
