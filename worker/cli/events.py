"""``events emit``: produce sample domain events (JSON or Avro) to an input topic."""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from worker.cli.common import CommandError, emit, settings_from
from worker.codec.events import encode_event_avro
from worker.components import Codecs
from worker.kafka.clients import make_producer
from worker.kafka.writes import produce

__all__ = ["build_event", "register"]


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("events", help="produce domain events")
    actions = group.add_subparsers(dest="action", required=True)
    emit_cmd = actions.add_parser("emit", parents=[common], help="emit sample events")
    emit_cmd.add_argument("--workspace", required=True)
    emit_cmd.add_argument("--event", required=True)
    emit_cmd.add_argument("--entity", default=None)
    emit_cmd.add_argument("--record", default=None, help="the record as a JSON object")
    emit_cmd.add_argument("--changes", default=None, help="changes as a JSON object")
    emit_cmd.add_argument("--count", type=int, default=1)
    emit_cmd.add_argument("--topic", default=None, help="default: the first input topic")
    emit_cmd.add_argument("--format", choices=("json", "avro"), default="json")
    emit_cmd.set_defaults(handler=_emit)


def build_event(
    workspace: str,
    event: str,
    *,
    entity: str | None = None,
    record: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "evt_" + uuid.uuid4().hex,
        "event": event,
        "workspace": workspace,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "record": record if record is not None else {"id": uuid.uuid4().hex[:8]},
    }
    if entity is not None:
        data["entity"] = entity
    if changes is not None:
        data["changes"] = changes
    return data


def _json_object(text: str | None, flag: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise CommandError(f"{flag} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CommandError(f"{flag} must be a JSON object")
    return value


def _emit(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.count < 1:
        raise CommandError("--count must be at least 1")
    record = _json_object(args.record, "--record")
    changes = _json_object(args.changes, "--changes")
    topic = args.topic or settings.input_topic_list()[0]
    if topic.startswith("^"):
        raise CommandError("WEBHOOK_INPUT_TOPICS is a pattern: pass --topic")
    avro = Codecs.load().avro if args.format == "avro" else None
    producer = make_producer(settings)
    errors: list[str] = []
    ids = []
    start = time.perf_counter()
    for _ in range(args.count):
        data = build_event(
            args.workspace, args.event, entity=args.entity, record=record, changes=changes
        )
        ids.append(data["id"])
        value = encode_event_avro(data, avro) if avro is not None else orjson.dumps(data)
        produce(
            producer,
            topic,
            value,
            args.workspace.encode(),
            lambda err, _m: errors.append(str(err)) if err else None,
        )
    if producer.flush(30) or errors:
        raise CommandError(f"could not write to {topic}: {errors[:1] or 'timed out'}")
    elapsed = time.perf_counter() - start
    emit(
        args.output,
        {"topic": topic, "count": args.count, "ids": ids[:100], "seconds": round(elapsed, 3)},
        f"emitted {args.count} event(s) to {topic}",
    )
    return 0
