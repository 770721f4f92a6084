"""The input benches' Debezium samples (bench/debezium.py) are what a real connector writes:
byte for byte the update captured from Debezium 3.6.1 on PostgreSQL through Kafka Connect's
JsonConverter with schemas (data/debezium-update.*.json), once its clock values are used."""

from __future__ import annotations

from pathlib import Path

import orjson

from bench import debezium

DATA = Path(__file__).with_name("data")
VALUE = (DATA / "debezium-update.value.json").read_bytes()
KEY = (DATA / "debezium-update.key.json").read_bytes()


def captured_change() -> dict:
    payload = orjson.loads(VALUE)["payload"]
    return debezium.change_event(
        payload["before"],
        payload["after"],
        payload["op"],
        payload["source"]["ts_ms"],
        delay_ms=payload["ts_ms"] - payload["source"]["ts_ms"],
    )


def test_the_sample_with_schemas_is_the_captured_message():
    change = captured_change()
    value, key = debezium.with_schemas(change, change["after"])
    assert orjson.loads(value) == orjson.loads(VALUE)
    assert value == VALUE
    assert key == KEY


def test_the_sample_without_schemas_is_the_captured_payload():
    change = captured_change()
    value, key = debezium.without_schemas(change, change["after"])
    assert value == orjson.dumps(orjson.loads(VALUE)["payload"])
    assert key == orjson.dumps(orjson.loads(KEY)["payload"])
