"""``inputs check`` shows what records of each format become, delivering nothing; a
mapping that cannot work stops ``run`` with one line naming the file, the mapping and the
key."""

from __future__ import annotations

import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.v1.event import CloudEvent

from tests.support.cli import cli_error, cli_json, run_cli
from tests.support.inputs import json_value, mapped_settings, produce_raw, write_mapping
from tests.support.kafka import consume_all

pytestmark = pytest.mark.timeout(120)

MAPPING = """
inputs:
  - {{name: ce, topics: [{p}ce], format: cloudevents, workspace: "field:workspace"}}
  - {{name: cdc, topics: [{p}cdc], format: debezium, workspace: "const:acme"}}
  - name: orders
    topics: [{p}orders]
    format: custom
    event: field:kind
    workspace: header:x-tenant
  - {{name: env, topics: [{p}events], format: envelope}}
"""


def test_inputs_check_shows_each_format(settings_factory, tmp_path):
    settings = mapped_settings(
        settings_factory, tmp_path, ["ce", "cdc", "orders", "events"], MAPPING
    )
    boot, p = settings.bootstrap_servers, settings.topic_prefix
    event = CloudEvent(
        {"type": "a.b", "source": "/s", "id": "e1", "specversion": "1.0", "workspace": "acme"},
        {"id": 3},
    )
    message = ce_kafka.to_binary_event(event)
    produce_raw(boot, f"{p}ce", [(None, message.value, message.headers), (None, b"{}", None)])
    change = {"before": None, "after": {"id": 1}, "op": "c", "source": {"table": "t"}}
    produce_raw(
        boot,
        f"{p}cdc",
        [(b'{"id": 1}', json_value(change), None), (b'{"id": 1}', None, None)],
    )
    produce_raw(boot, f"{p}orders", [(None, json_value({"kind": "o.p"}), {"x-tenant": b"w"})])
    produce_raw(boot, f"{p}events", [(None, json_value({"event": "x.y", "workspace": "w"}), None)])
    env = {"WEBHOOK_INPUTS": settings.inputs or ""}
    document = cli_json(settings, "inputs", "check", "--sample", "3", env=env)
    rows = {(r["topic"].removeprefix(p), r["offset"]): r for r in document["records"]}
    assert {(k, r["outcome"]) for k, r in rows.items()} == {
        (("ce", 0), "event"),
        (("ce", 1), "invalid"),
        (("cdc", 0), "event"),
        (("cdc", 1), "skipped"),
        (("orders", 0), "event"),
        (("events", 0), "event"),
    }
    assert rows[("ce", 0)]["event"]["record"] == {"id": 3}
    assert "no ce_type header" in rows[("ce", 1)]["reason"]
    assert rows[("cdc", 0)]["event"]["event"] == "record.created"
    assert rows[("cdc", 0)]["ordering_key"] == "t/1"
    assert rows[("cdc", 1)]["reason"] == "tombstone (no value)"
    assert rows[("orders", 0)]["event"]["workspace"] == "w"
    assert [m["format"] for m in document["inputs"]] == [
        "cloudevents",
        "debezium",
        "custom",
        "envelope",
    ]
    text = run_cli(settings, "inputs", "check", env=env)
    assert text.returncode == 0, text.stderr
    assert b"no ce_type header" in text.stdout and b"record.created" in text.stdout
    # Nothing was delivered or routed: the check has no group and writes nothing.
    assert consume_all(boot, p + "deliveries") == []
    assert consume_all(boot, p + "invalid-events") == []


def test_a_mapping_that_cannot_work_stops_the_start(settings_factory, tmp_path):
    settings = settings_factory(partitions=1)
    bad = write_mapping(
        tmp_path,
        f"inputs:\n  - {{name: cdc, topics: [{settings.input_topics}], format: debezium,"
        " workspace: 'field:a..b'}\n",
    )
    line = cli_error(settings, "run", env={"WEBHOOK_INPUTS": bad})
    assert line == (
        f"webhook-worker: error: WEBHOOK_INPUTS {bad}: inputs[0] (cdc): workspace: bad path "
        "'a..b': names separated by single dots"
    )
    assert cli_error(settings, "inputs", "check", env={"WEBHOOK_INPUTS": bad}).endswith(
        "names separated by single dots"
    )
