"""Values framed for a Schema Registry by confluent-kafka's own AvroSerializer and
JSONSerializer are delivered; an unknown id or unreadable bytes go to invalid-events with the
reason; a registry that is down holds the partition (nothing invalid, nothing delivered, not
ready) and everything arrives, in order, once it is back.

The registry is a real one, Apicurio Registry through its Confluent-compatible API
(tests/support/apicurio.py), started once for the module; the outage stops and starts it."""

from __future__ import annotations

import time

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.support.apicurio import ApicurioRegistry
from tests.support.cli import cli_json
from tests.support.inputs import invalid_records, mapped_settings, produce_raw, subscribed_receiver
from tests.support.worker import metric, running

pytestmark = pytest.mark.timeout(150)

AVRO_SCHEMA = """
{"type": "record", "name": "ContactEvent", "fields": [
  {"name": "event", "type": "string"},
  {"name": "workspace", "type": "string"},
  {"name": "id", "type": "string"},
  {"name": "entity", "type": ["null", "string"], "default": null},
  {"name": "occurred", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "record", "type": {"type": "record", "name": "Contact", "fields": [
    {"name": "id", "type": "long"}, {"name": "name", "type": "string"}]}}]}
"""
JSON_SCHEMA = """
{"type": "object", "properties": {"type": {"type": "string"}, "tenant": {"type": "string"},
 "ref": {"type": "string"}, "order": {"type": "object"}}, "required": ["type", "tenant"]}
"""
MAPPING = """
inputs:
  - {{name: avro, topics: [{p}avro], format: envelope}}
  - name: json
    topics: [{p}json]
    format: custom
    event: field:type
    workspace: field:tenant
    id: field:ref
    record: field:order
"""


def avro_event(n: int) -> dict:
    return {
        "event": "contact.created",
        "workspace": "acme",
        "id": f"a-{n}",
        "entity": "contact",
        "occurred": 1774967400000 + n,
        "record": {"id": n, "name": f"Contact {n}"},
    }


@pytest.fixture(scope="module")
def registry():
    with ApicurioRegistry() as running_registry:
        yield running_registry


def serializers(client: SchemaRegistryClient) -> tuple[AvroSerializer, JSONSerializer]:
    return AvroSerializer(client, AVRO_SCHEMA), JSONSerializer(JSON_SCHEMA, client)


def test_framed_avro_and_json_schema_values_and_bad_ones(registry, settings_factory, tmp_path):
    settings = mapped_settings(
        settings_factory,
        tmp_path,
        ["avro", "json"],
        MAPPING,
        schema_registry_url=registry.url,
    )
    boot, p = settings.bootstrap_servers, settings.topic_prefix
    order = {"type": "order.placed", "tenant": "acme", "ref": "o-1", "order": {"total": 3}}
    with SchemaRegistryClient({"url": registry.url}) as client:
        avro, json_schema = serializers(client)
        good_avro = avro(avro_event(1), SerializationContext(f"{p}avro", MessageField.VALUE))
        good_json = json_schema(order, SerializationContext(f"{p}json", MessageField.VALUE))
    schema_id = good_avro[1:5]
    with subscribed_receiver(settings) as receiver, running(settings):
        produce_raw(
            boot,
            f"{p}avro",
            [
                (None, b"\x00" + (999).to_bytes(4, "big") + b"\x02", None),
                (None, b"\x00" + schema_id + b"\xff\xff\xff\xff", None),
                (None, good_avro, None),
            ],
        )
        produce_raw(boot, f"{p}json", [(None, good_json, None)])
        got = receiver.wait_for("ok", 2, timeout=60)
        deadline = time.monotonic() + 30
        while len(invalid := invalid_records(boot, p)) < 2:
            assert time.monotonic() < deadline, invalid
            time.sleep(0.3)
    env = {"WEBHOOK_INPUTS": settings.inputs or "", "WEBHOOK_SCHEMA_REGISTRY_URL": registry.url}
    checked = cli_json(settings, "inputs", "check", env=env)["records"]
    assert all(r.verified for r in got)
    bodies = {r.json["id"]: r.json for r in got}
    assert bodies["a-1"] == {
        "event": "contact.created",
        "workspace": "acme",
        "id": "a-1",
        "entity": "contact",
        "occurred": "2026-03-31T14:30:00.001Z",
        "record": {"id": 1, "name": "Contact 1"},
        "timestamp": bodies["a-1"]["timestamp"],
    }
    assert bodies["o-1"] == {
        "event": "order.placed",
        "workspace": "acme",
        "id": "o-1",
        "record": {"total": 3},
        "timestamp": bodies["o-1"]["timestamp"],
    }
    assert [(r["topic"].removeprefix(p), r["offset"], r["outcome"]) for r in checked] == [
        ("avro", 0, "invalid"),
        ("avro", 1, "invalid"),
        ("avro", 2, "event"),
        ("json", 0, "event"),
    ]
    assert checked[2]["event"]["record"] == {"id": 1, "name": "Contact 1"}
    reasons = sorted((r.offset, r.error) for r in invalid)
    assert reasons[0] == (0, "decode: schema id 999 is not in the Schema Registry")
    assert reasons[1][0] == 1
    assert reasons[1][1].startswith(
        f"decode: not readable with Avro schema id {int.from_bytes(schema_id, 'big')}"
    )


def test_a_registry_outage_holds_the_partition_and_loses_nothing(
    registry, settings_factory, tmp_path
):
    settings = mapped_settings(
        settings_factory, tmp_path, ["avro", "json"], MAPPING, schema_registry_url=registry.url
    )
    boot, p = settings.bootstrap_servers, settings.topic_prefix
    context = SerializationContext(f"{p}avro", MessageField.VALUE)
    with SchemaRegistryClient({"url": registry.url}) as client:
        avro, _ = serializers(client)
        first = avro(avro_event(0), context)  # registers the schema (the serializer caches it)
        registry.stop()
        framed = [first] + [avro(avro_event(n), context) for n in range(1, 20)]
    with (
        subscribed_receiver(settings, ordering="endpoint") as receiver,
        running(settings) as worker,
    ):
        produce_raw(boot, f"{p}avro", [(b"k", v, None) for v in framed])
        deadline = time.monotonic() + 30
        while (ready := httpx.get(f"http://127.0.0.1:{worker.port}/readyz")).status_code == 200:
            assert time.monotonic() < deadline, "never reported the registry down"
            time.sleep(0.2)
        assert "schema registry unreachable" in ready.text
        assert metric(worker.port, "webhook_schema_registry_up") == 0
        assert metric(worker.port, "webhook_input_partitions_held") == 1
        time.sleep(3)  # a few back-off rounds
        assert receiver.received("ok") == []
        assert invalid_records(boot, p) == []
        registry.start()  # the same port and data
        got = receiver.wait_for("ok", 20, timeout=60)
        assert httpx.get(f"http://127.0.0.1:{worker.port}/readyz").status_code == 200
        assert metric(worker.port, "webhook_schema_registry_up") == 1
        assert metric(worker.port, "webhook_input_partitions_held") == 0
    assert [r.json["id"] for r in got] == [f"a-{n}" for n in range(20)]
    assert invalid_records(boot, p) == []
