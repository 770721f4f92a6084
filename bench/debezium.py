"""The input benches' Debezium samples: a PostgreSQL row change as Debezium 3.6 writes it and
Kafka Connect's ``JsonConverter`` puts it on the wire, with ``schemas.enable=true``
(:func:`with_schemas`: the value and the key each ``{"schema":{...},"payload":{...}}``,
compact, schema first, as Jackson writes them) or without (:func:`without_schemas`).

The schema is generated from the row's columns (an int an ``int32``, a string a ``string``,
the key column not optional), with the ``io.debezium.connector.postgresql.Source`` block, the
``event.block`` transaction block and the ``ts_*`` fields Debezium 3.6.1 writes.
``tests/unit/inputs/test_bench_debezium.py`` checks both against a message captured from a
real connector (``tests/unit/inputs/data/debezium-update.{value,key}.json``: Debezium 3.6.1.Final,
PostgreSQL 15, pgoutput, Kafka Connect 4.1.1, a table of the bench row's columns).
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["change_event", "key_schema", "value_schema", "with_schemas", "without_schemas"]

PREFIX = "crm"  # the connector's topic.prefix
SCHEMA, TABLE, KEY = "public", "contacts", "id"
SNAPSHOT_VALUES = (
    "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"
)


def _field(kind: str, field: str, optional: bool = True, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "optional": optional, **extra, "field": field}


def _columns(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        _field("int32" if type(v) is int else "string", name, optional=name != KEY)
        for name, v in row.items()
    ]


def _source_schema() -> dict[str, Any]:
    string, int64 = "string", "int64"
    snapshot = {
        "name": "io.debezium.data.Enum",
        "version": 1,
        "parameters": {"allowed": SNAPSHOT_VALUES},
        "default": "false",
    }
    return {
        "type": "struct",
        "fields": [
            _field(string, "version", False),
            _field(string, "connector", False),
            _field(string, "name", False),
            _field(int64, "ts_ms", False),
            _field(string, "snapshot", True, **snapshot),
            _field(string, "db", False),
            _field(string, "sequence"),
            _field(int64, "ts_us"),
            _field(int64, "ts_ns"),
            _field(string, "schema", False),
            _field(string, "table", False),
            _field(int64, "txId"),
            _field(int64, "lsn"),
            _field(int64, "xmin"),
            _field(string, "origin"),
            _field(int64, "origin_lsn"),
        ],
        "optional": False,
        "name": "io.debezium.connector.postgresql.Source",
        "version": 1,
        "field": "source",
    }


def value_schema(row: dict[str, Any]) -> dict[str, Any]:
    """The ``<prefix>.<schema>.<table>.Envelope`` schema of a table with ``row``'s columns."""
    name = f"{PREFIX}.{SCHEMA}.{TABLE}"

    def side(field: str) -> dict[str, Any]:
        return {
            "type": "struct",
            "fields": _columns(row),
            "optional": True,
            "name": f"{name}.Value",
            "field": field,
        }

    block = {
        "type": "struct",
        "fields": [
            _field("string", "id", False),
            _field("int64", "total_order", False),
            _field("int64", "data_collection_order", False),
        ],
        "optional": True,
        "name": "event.block",
        "version": 1,
        "field": "transaction",
    }
    return {
        "type": "struct",
        "fields": [
            side("before"),
            side("after"),
            _source_schema(),
            block,
            _field("string", "op", False),
            _field("int64", "ts_ms"),
            _field("int64", "ts_us"),
            _field("int64", "ts_ns"),
        ],
        "optional": False,
        "name": f"{name}.Envelope",
        "version": 2,
    }


def key_schema() -> dict[str, Any]:
    return {
        "type": "struct",
        "fields": [_field("int32", KEY, False)],
        "optional": False,
        "name": f"{PREFIX}.{SCHEMA}.{TABLE}.Key",
    }


def change_event(
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    op: str,
    ts_ms: int,
    delay_ms: int = 123,
) -> dict[str, Any]:
    """The payload: the change committed at ``ts_ms`` (the source's clock) and written
    ``delay_ms`` later, with every field of Debezium's ``source`` block."""
    lsn = 26367560
    source = {
        "version": "3.6.1.Final",
        "connector": "postgresql",
        "name": PREFIX,
        "ts_ms": ts_ms,
        "snapshot": "false",
        "db": PREFIX,
        "sequence": orjson.dumps([str(lsn), str(lsn)]).decode(),
        "ts_us": ts_ms * 1000 + 318,
        "ts_ns": (ts_ms * 1000 + 318) * 1000,
        "schema": SCHEMA,
        "table": TABLE,
        "txId": 729,
        "lsn": lsn,
        "xmin": None,
        "origin": None,
        "origin_lsn": None,
    }
    written = ts_ms + delay_ms
    return {
        "before": before,
        "after": after,
        "source": source,
        "transaction": None,
        "op": op,
        "ts_ms": written,
        "ts_us": written * 1000 + 870,
        "ts_ns": (written * 1000 + 870) * 1000 + 370,
    }


def with_schemas(change: dict[str, Any], row: dict[str, Any]) -> tuple[bytes, bytes]:
    """(value, key) as the ``JsonConverter`` writes them with ``schemas.enable=true``."""
    value = {"schema": value_schema(row), "payload": change}
    key = {"schema": key_schema(), "payload": {KEY: row[KEY]}}
    return orjson.dumps(value), orjson.dumps(key)


def without_schemas(change: dict[str, Any], row: dict[str, Any]) -> tuple[bytes, bytes]:
    """(value, key) with ``schemas.enable=false``: the payloads alone."""
    return orjson.dumps(change), orjson.dumps({KEY: row[KEY]})
