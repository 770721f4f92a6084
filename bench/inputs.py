"""``python -m bench.inputs [--records 5000] [--rounds 20] [--decode-only]``: routing CPU per
input record, per input format, as a ratio to the native envelope in the same run (issue 25's
target: every format at >= 0.8 of the envelope's throughput, Schema Registry with a warm
cache).

Measures the router's work for one record without a broker: the router's decode call
(:meth:`worker.inputs.InputDecoder.decode` on a real ``confluent_kafka.Message``), the match
against one subscription, the body render and the delivery task's encoding. Kafka I/O costs
the same for every format, so leaving it out makes the ratio stricter, not looser. Each format
runs ``--rounds`` times interleaved with the envelope, best round kept; prints a table and
``bench/inputs.json``. ``--decode-only`` times the decode call alone (where the formats
differ) and only prints.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Message
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from bench import debezium
from tests.support.schema_registry import SchemaRegistryStandIn
from worker.codec.avro import AvroCodec
from worker.codec.records import RecordCodec
from worker.config import Settings
from worker.inputs import InputDecoder, load_inputs
from worker.inputs.registry import SchemaRegistry
from worker.router import delivery_task, ordering_key
from worker.subscriptions.model import SecretEntry, Status, Subscription

HERE = Path(__file__).resolve().parent
TIMESTAMP = (1, 1774967400000)
ROW = {
    "id": 7,
    "name": "Jane Smith",
    "email": "jane@example.com",
    "stage": "proposal",
    "owner": "vincent",
    "amount": 1200,
    "tenant": "acme",
}
MAPPING = """
inputs:
  - {topics: [cdc], format: debezium, workspace: "field:row.tenant"}
  - {topics: [cdcschema], format: debezium, workspace: "field:row.tenant"}
  - {topics: [ce], format: cloudevents, workspace: "field:workspace"}
  - {topics: [cestruct], format: cloudevents, workspace: "field:workspace"}
  - {topics: [orders], format: custom, event: "field:kind", workspace: "header:x-tenant",
     record: "field:order", id: "field:ref"}
  - {topics: [avro, avromap, jsonschema], format: envelope}
"""
INPUT_TOPICS = "events,cdc,cdcschema,ce,cestruct,orders,avro,avromap,jsonschema"
# The one subscription that matches every record.
SUBSCRIPTION = Subscription(
    id="sub_1",
    workspace="acme",
    url="https://example.com/h",
    events=("*",),
    secrets=(SecretEntry("whsec_" + "A" * 32),),
    status=Status.ACTIVE,
)
# The envelope framed for a Schema Registry: the row as a typed record, as Avro producers
# (and Debezium's Avro converter) write one, and as a map of unions (every value tagged with
# its type, one more read per column: the slowest shape for fastavro).
AVRO_ENVELOPE = """{"type": "record", "name": "Ev", "fields": [
  {"name": "event", "type": "string"}, {"name": "workspace", "type": "string"},
  {"name": "entity", "type": "string"}, {"name": "record", "type": %s}]}"""
AVRO_ROW = """{"type": "record", "name": "Row", "fields": [
  {"name": "id", "type": "long"}, {"name": "name", "type": "string"},
  {"name": "email", "type": "string"}, {"name": "stage", "type": "string"},
  {"name": "owner", "type": "string"}, {"name": "amount", "type": "long"},
  {"name": "tenant", "type": "string"}]}"""
AVRO_SCHEMA = AVRO_ENVELOPE % AVRO_ROW
AVRO_MAP_SCHEMA = AVRO_ENVELOPE % '{"type": "map", "values": ["string", "long"]}'
JSON_SCHEMA = """{"type": "object", "required": ["event", "workspace"], "properties": {
  "event": {"type": "string"}, "workspace": {"type": "string"}, "record": {"type": "object"}}}"""


def messages(registry_url: str) -> dict[str, Message]:
    # A real connector's update (bench/debezium.py): the full source block, and with
    # schemas the whole Envelope schema (3.3 KB value, 155 B key).
    change = debezium.change_event({**ROW, "stage": "qualification"}, ROW, "u", TIMESTAMP[1])
    plain, schemas = debezium.without_schemas(change, ROW), debezium.with_schemas(change, ROW)
    ce_attrs = {
        "specversion": "1.0",
        "type": "contact.updated",
        "id": "e-1",
        "source": "/crm",
        "subject": "contacts/7",
        "time": "2026-03-31T14:30:00Z",
        "workspace": "acme",
    }
    # The README's envelope: what a producer of our own format writes.
    envelope = {
        "id": "evt_01J",
        "event": "contact.updated",
        "entity": "contact",
        "workspace": "acme",
        "timestamp": "2026-03-31T14:30:00Z",
        "user": "vincent",
        "record": ROW,
        "changes": {"stage": {"old": "qualification", "new": "proposal"}},
    }
    client = SchemaRegistryClient({"url": registry_url})
    avro_event = {
        "event": "contact.updated",
        "workspace": "acme",
        "entity": "contact",
        "record": ROW,
    }

    def framed(topic: str, serializer: AvroSerializer | JSONSerializer, value: Any) -> bytes:
        data = serializer(value, SerializationContext(topic, MessageField.VALUE))
        assert data is not None
        return data

    def message(topic: str, value: bytes, key: bytes | None = None, headers: Any = None) -> Message:
        return Message(
            topic=topic,
            partition=0,
            offset=5,
            key=key,
            value=value,
            headers=headers,
            timestamp=TIMESTAMP,
        )

    return {
        "envelope": message("events", orjson.dumps(envelope)),
        "debezium": message("cdc", *plain),
        "debezium (schemas)": message("cdcschema", *schemas),
        "cloudevents binary": message(
            "ce",
            orjson.dumps(ROW),
            headers=[(f"ce_{k}", v.encode()) for k, v in ce_attrs.items()]
            + [("content-type", b"application/json")],
        ),
        "cloudevents structured": message(
            "cestruct",
            orjson.dumps({**ce_attrs, "data": ROW}),
            headers=[("content-type", b"application/cloudevents+json")],
        ),
        "custom": message(
            "orders",
            orjson.dumps({"kind": "order.placed", "ref": "o-1", "order": ROW}),
            headers=[("x-tenant", b"acme")],
        ),
        "schema registry avro": message(
            "avro", framed("avro", AvroSerializer(client, AVRO_SCHEMA), avro_event)
        ),
        "schema registry avro, map of unions": message(
            "avromap", framed("avromap", AvroSerializer(client, AVRO_MAP_SCHEMA), avro_event)
        ),
        "schema registry json schema": message(
            "jsonschema", framed("jsonschema", JSONSerializer(JSON_SCHEMA, client), envelope)
        ),
    }


def route_once(
    decoder: InputDecoder, codec: RecordCodec, sub: Subscription
) -> Callable[[Message], None]:
    def route(message: Message) -> None:
        event = decoder.decode(message)
        assert event is not None
        key = ordering_key(event, message.key())
        codec.encode_task(delivery_task(event, sub, key, int(time.time() * 1000)))

    return route


def per_record_us(route: Callable[[Message], object], message: Message, n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        route(message)
    return (time.process_time() - start) / n * 1e6


def arguments(prog: str, rounds: int, records: int = 20_000) -> argparse.ArgumentParser:
    """``--records`` per format and run, and ``--rounds``: the options of both input benches."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--records", type=int, default=records)
    parser.add_argument("--rounds", type=int, default=rounds)
    return parser


@contextmanager
def mapping_file() -> Iterator[str]:
    """The path of a temporary ``inputs.yaml`` holding :data:`MAPPING`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "inputs.yaml")
        Path(path).write_text(MAPPING)
        yield path


def main(argv: list[str] | None = None) -> None:
    # Many short rounds: the best of 20 rounds of 5,000 moved 0.01-0.02 between runs where
    # the best of 5 of 10,000 moved up to 0.09 (a neighbour's burst spoils a round, not all).
    parser = arguments("python -m bench.inputs", 20, 5_000)
    parser.add_argument("--decode-only", action="store_true", help="time the decode call alone")
    args = parser.parse_args(argv)
    registry = SchemaRegistryStandIn().start()
    try:
        with mapping_file() as path:
            settings = Settings.from_env({}, inputs=path, input_topics=INPUT_TOPICS)
            avro = AvroCodec()
            decoder = InputDecoder(
                avro=avro,
                max_bytes=1_000_000,
                spec=load_inputs(settings),
                registry=SchemaRegistry(registry.url),
            )
            sub = dataclasses.replace(SUBSCRIPTION, ordering="key")
            route = route_once(decoder, RecordCodec(avro), sub)
            samples = messages(registry.url)
            timed = decoder.decode if args.decode_only else route
            for message in samples.values():
                route(message)  # warm: the registry's schema is cached from here on
            best = {name: float("inf") for name in samples}
            for _ in range(args.rounds):
                for name, message in samples.items():
                    best[name] = min(best[name], per_record_us(timed, message, args.records))
    finally:
        registry.stop()
    base = best["envelope"]
    rows = [
        {"format": name, "us_per_record": round(us, 2), "ratio": round(base / us, 2)}
        for name, us in best.items()
    ]
    print(f"{'format':<36} {'us/record':>10} {'vs envelope':>12}")
    for row in rows:
        print(f"{row['format']:<36} {row['us_per_record']:>10} {row['ratio']:>12}")
    if args.decode_only:
        return
    (HERE / "inputs.json").write_bytes(
        orjson.dumps(
            {"records": args.records, "rounds": args.rounds, "results": rows},
            option=orjson.OPT_INDENT_2,
        )
    )


if __name__ == "__main__":
    main()
