"""``inputs check``: what the first records of each mapped input topic become, delivering
nothing (docs/usage.md, "Checking a mapping")."""

from __future__ import annotations

import argparse
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from worker.app import input_decoder
from worker.cli.common import CommandError, emit, settings_from
from worker.cli.render import table
from worker.codec.events import InvalidEventError
from worker.components import Codecs
from worker.config import Settings
from worker.inputs import InputDecoder, InputSpec
from worker.inputs.catalogue import debezium_catalogue, table_of
from worker.inputs.formats import SkippedError
from worker.inputs.record import InputRecord
from worker.inputs.registry import RegistryUnavailableError
from worker.inputs.spec import is_input_topic, load_inputs
from worker.kafka.clients import make_consumer
from worker.kafka.offsets import position
from worker.router import ordering_key

__all__ = ["register"]

READ_TIMEOUT_S = 10.0


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("inputs", help="the input mappings (WEBHOOK_INPUTS)")
    actions = group.add_subparsers(dest="action", required=True)
    check = actions.add_parser(
        "check", parents=[common], help="what the first records of each mapped topic become"
    )
    check.add_argument("--sample", type=int, default=5, help="records per partition (1-1000)")
    check.set_defaults(handler=_check)
    catalogue = actions.add_parser(
        "catalogue",
        parents=[common],
        help="an event-type catalogue for the Debezium mappings' tables (WEBHOOK_EVENT_TYPES)",
    )
    catalogue.add_argument(
        "--tables", default=None, help="comma-separated tables (default: the mapped topics')"
    )
    # With --tables (or plain topic names) it reads nothing from the cluster.
    catalogue.set_defaults(handler=_catalogue, broker_check=False)


def _check(args: argparse.Namespace) -> int:
    if not 1 <= args.sample <= 1000:
        raise CommandError(f"--sample: expected 1 to 1000, got {args.sample}")
    settings = settings_from(args)
    settings.to_librdkafka()
    decoder = input_decoder(settings, Codecs.load(), None)
    spec = decoder.spec
    if spec is None:
        raise CommandError("WEBHOOK_INPUTS is not set: every input record is an envelope")
    consumer = make_consumer(settings, None, **{"enable.partition.eof": "true"})
    try:
        topics = _mapped_topics(consumer, spec, settings)
        rows = [_outcome(decoder, spec, m) for m in _sample(consumer, topics, args.sample)]
    finally:
        consumer.close()
        decoder.close()
    inputs = [
        {"mapping": m.label, "format": m.format_name, "topics": [t for t in topics if m.matches(t)]}
        for m in spec.mappings
    ]
    text = table(
        [_line(row) for row in rows],
        ("position", "mapping", "outcome", "event", "workspace", "detail"),
        empty="no records",
    )
    emit(args.output, {"inputs": inputs, "records": rows}, text)
    return 0


def _catalogue(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    spec = load_inputs(settings)
    debezium = [m for m in spec.mappings if m.format_name == "debezium"] if spec else []
    if spec is None or not debezium:
        raise CommandError("no debezium mapping in WEBHOOK_INPUTS")
    by_entity = any(getattr(m.format, "by_entity", False) for m in debezium)
    if args.tables:
        tables = [t.strip() for t in args.tables.split(",") if t.strip()]
    else:
        names = [t for m in debezium for t in m.topics]
        if any(m.pattern is not None for m in debezium):
            settings.to_librdkafka()
            consumer = make_consumer(settings, None)
            try:
                names += _mapped_topics(consumer, spec, settings)
            finally:
                consumer.close()
        tables = sorted({table_of(t) for t in names if any(m.matches(t) for m in debezium)})
    document = debezium_catalogue(tables, by_entity=by_entity)
    emit("json", document)
    return 0


def _mapped_topics(consumer: Consumer, spec: InputSpec, settings: Settings) -> list[str]:
    try:
        names = sorted(consumer.list_topics(timeout=10).topics)
    except KafkaException as exc:
        raise CommandError(f"cannot list topics: {exc.args[0]}") from None
    mapped = [t for t in names if is_input_topic(t, settings) and spec.mapping_for(t)]
    missing = [t for m in spec.mappings for t in m.topics if t not in names]
    if missing:
        raise CommandError(f"mapped topic {missing[0]!r} does not exist")
    return mapped


def _sample(consumer: Consumer, topics: list[str], n: int) -> list[Any]:
    """The first ``n`` records of every partition of ``topics``, in offset order."""
    metadata = consumer.list_topics(timeout=10).topics
    wanted = [
        TopicPartition(t, p, OFFSET_BEGINNING) for t in topics for p in metadata[t].partitions
    ]
    if not wanted:
        return []
    consumer.assign(wanted)
    left = {(tp.topic, tp.partition): n for tp in wanted}
    got: list[Any] = []
    deadline = time.monotonic() + READ_TIMEOUT_S
    while left and time.monotonic() < deadline:
        for message in consumer.consume(500, timeout=0.2):
            where = (message.topic() or "", message.partition() or 0)
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    left.pop(where, None)
                continue
            if where in left:
                got.append(message)
                left[where] -= 1
                if not left[where]:
                    left.pop(where)
    got.sort(key=position)
    return got


def _outcome(decoder: InputDecoder, spec: InputSpec, message: Any) -> dict[str, Any]:
    topic, partition, offset = position(message)
    mapping = spec.mapping_for(topic)
    _, timestamp_ms = message.timestamp()
    record = InputRecord(topic, partition, offset, timestamp_ms, message.key(), message.headers())
    row: dict[str, Any] = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "mapping": mapping.label if mapping else "envelope",
        "outcome": "event",
        "event": None,
        "reason": None,
    }
    try:
        _, event = decoder.explain(record, message.value())
    except SkippedError as exc:
        return row | {"outcome": "skipped", "reason": str(exc)}
    except InvalidEventError as exc:
        return row | {"outcome": "invalid", "reason": str(exc)}
    except RegistryUnavailableError as exc:
        return row | {"outcome": "held", "reason": str(exc)}
    key = ordering_key(event, message.key())
    return row | {
        "event": event.data,
        "ordering_key": key.decode(errors="replace") if key else None,
    }


def _line(row: dict[str, Any]) -> dict[str, Any]:
    """One row of the text table."""
    event = row["event"] or {}
    detail = row["reason"] or (
        f"entity={event.get('entity') or '-'} id={event.get('id')} "
        f"ordering_key={row.get('ordering_key') or '-'}"
    )
    return {
        "position": f"{row['topic']}/{row['partition']}/{row['offset']}",
        "mapping": row["mapping"],
        "outcome": row["outcome"],
        "event": event.get("event"),
        "workspace": event.get("workspace"),
        "detail": detail,
    }
