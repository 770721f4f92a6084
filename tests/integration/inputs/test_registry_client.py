"""The Schema Registry client against a server on 127.0.0.1: schemas cached by id, an unknown
id is a bad record (and not asked again at once), a failing registry is unavailable (not the
record's fault) and is not asked again before its back-off, basic auth is sent."""

from __future__ import annotations

import pytest

from tests.support.schema_registry import SchemaRegistryStandIn
from worker.codec.events import InvalidEventError
from worker.inputs.registry import RegistryUnavailableError, SchemaRegistry

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def stand_in():
    registry = SchemaRegistryStandIn().start()
    registry.schemas[1] = {"schema": '{"type": "string"}', "schemaType": "AVRO"}
    registry.schemas[2] = {"schema": '{"type": "object"}', "schemaType": "JSON"}
    registry.schemas[3] = {"schema": "syntax = 'proto3';", "schemaType": "PROTOBUF"}
    yield registry
    registry.stop()


def test_cached_unknown_and_unsupported(stand_in):
    client = SchemaRegistry(stand_in.url, basic_auth="reader:s3cret")
    assert client.schema(1).kind == "AVRO" and client.schema(1).plain
    assert client.schema(2).kind == "JSON"
    assert stand_in.fetches == 2  # the second read of id 1 came from the cache
    for _ in range(2):
        with pytest.raises(InvalidEventError, match="schema id 9 is not in the Schema Registry"):
            client.schema(9)
    assert stand_in.fetches == 3  # the unknown id is remembered for a while
    with pytest.raises(InvalidEventError, match="is PROTOBUF, not Avro or JSON"):
        client.schema(3)
    assert set(stand_in.authorizations) == {"Basic cmVhZGVyOnMzY3JldA=="}
    assert client.up is True


def test_a_failing_registry_is_unavailable_and_waits_its_back_off(stand_in):
    client = SchemaRegistry(stand_in.url)
    stand_in.status = 503
    with pytest.raises(RegistryUnavailableError, match="HTTP 503"):
        client.schema(1)
    assert client.up is False
    asked = stand_in.fetches + len(stand_in.authorizations)
    with pytest.raises(RegistryUnavailableError):
        client.schema(1)  # within the back-off: not asked
    assert stand_in.fetches + len(stand_in.authorizations) == asked
    stand_in.stop()
    dead = SchemaRegistry(stand_in.url)
    with pytest.raises(RegistryUnavailableError, match="ConnectError"):
        dead.schema(1)
