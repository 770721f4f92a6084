"""The Schema Registry client against a server on 127.0.0.1: schemas cached by id, an unknown
id is a bad record (and not asked again at once), a failing registry is unavailable (not the
record's fault) and is not asked again before its back-off, basic auth is sent.

What a registry serves is checked on a real one (Apicurio Registry, tests/support/apicurio.py);
an HTTP 503 on demand and the headers received are the stand-in's
(tests/support/schema_registry.py), since a real registry does neither."""

from __future__ import annotations

from contextlib import closing

import httpx
import pytest

from tests.support.apicurio import ApicurioRegistry
from tests.support.schema_registry import SchemaRegistryStandIn
from worker.codec.events import InvalidEventError
from worker.inputs.registry import RegistryUnavailableError, SchemaRegistry

pytestmark = pytest.mark.timeout(120)


def register(url: str, subject: str, schema: str, kind: str) -> int:
    answer = httpx.post(
        f"{url}/subjects/{subject}/versions", json={"schema": schema, "schemaType": kind}
    )
    answer.raise_for_status()
    return int(answer.json()["id"])


def test_cached_unknown_and_unsupported():
    with ApicurioRegistry() as registry:
        avro = register(registry.url, "a-value", '{"type": "string"}', "AVRO")
        # (Apicurio tells JSON Schema from its content: a bare {"type": "object"} is refused.)
        json_schema = '{"type": "object", "properties": {"a": {"type": "string"}}}'
        json_id = register(registry.url, "j-value", json_schema, "JSON")
        proto = register(
            registry.url, "p-value", 'syntax = "proto3"; message M { string a = 1; }', "PROTOBUF"
        )
        with closing(SchemaRegistry(registry.url)) as client:
            assert client.schema(avro).kind == "AVRO" and client.schema(avro).plain
            assert client.schema(json_id).kind == "JSON"
            with pytest.raises(
                InvalidEventError, match="schema id 999 is not in the Schema Registry"
            ):
                client.schema(999)
            with pytest.raises(InvalidEventError, match="is PROTOBUF, not Avro or JSON"):
                client.schema(proto)
            assert client.up is True
            registry.stop()
            # With the registry gone, cached schemas and the remembered unknown id still answer...
            assert client.schema(avro).kind == "AVRO" and client.schema(json_id).kind == "JSON"
            with pytest.raises(
                InvalidEventError, match="schema id 999 is not in the Schema Registry"
            ):
                client.schema(999)
            # ...and an id that had no usable answer is asked again: unavailable, not bad.
            with pytest.raises(RegistryUnavailableError, match="ConnectError"):
                client.schema(proto)
            assert client.up is False


def test_basic_auth_and_a_failing_registry_waits_its_back_off():
    stand_in = SchemaRegistryStandIn().start()
    try:
        stand_in.schemas[1] = {"schema": '{"type": "string"}', "schemaType": "AVRO"}
        with closing(SchemaRegistry(stand_in.url, basic_auth="reader:s3cret")) as client:
            assert client.schema(1).kind == "AVRO"
        assert stand_in.authorizations == ["Basic cmVhZGVyOnMzY3JldA=="]
        client = SchemaRegistry(stand_in.url)
        stand_in.status = 503
        with pytest.raises(RegistryUnavailableError, match="HTTP 503"):
            client.schema(1)
        assert client.up is False
        asked = stand_in.fetches + len(stand_in.authorizations)
        with pytest.raises(RegistryUnavailableError):
            client.schema(1)  # within the back-off: not asked
        assert stand_in.fetches + len(stand_in.authorizations) == asked
        client.close()
    finally:
        stand_in.stop()
