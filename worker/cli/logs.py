"""``logs ID [--since 1h] [--follow]``: every attempt of a subscription, from the attempts
topic (HARi "View Logs", Huntress "View Delivery Attempts")."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from worker.cli.common import CommandError, emit, printable, settings_from
from worker.cli.context import get_subscription
from worker.codec.records import RecordCodec
from worker.components import Codecs
from worker.config import ConfigError, Settings, parse_duration
from worker.kafka.clients import make_consumer
from worker.kafka.scan import ScanError, scan
from worker.kafka.topics import Topics
from worker.model import Attempt

__all__ = ["register"]

TEXT_BODY = 200


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    logs = commands.add_parser("logs", parents=[common], help="a subscription's attempts")
    logs.add_argument("id")
    logs.add_argument("--since", default="24h", help="how far back (default 24h)")
    logs.add_argument("--follow", action="store_true", help="keep printing new attempts")
    logs.set_defaults(handler=_logs)


def _view(a: Attempt) -> dict[str, Any]:
    return {
        "time": datetime.fromtimestamp(a.started_ms / 1000, UTC).isoformat(timespec="milliseconds"),
        "event_id": a.event_id,
        "webhook_id": a.delivery_id,
        "attempt": a.attempt,
        "status": a.status,
        "error": a.error,
        "outcome": a.outcome,
        "latency_ms": a.latency_ms,
        "request_body": a.request_body,
        "response_body": a.response_body,
    }


def _line(view: dict[str, Any]) -> str:
    result = view["status"] if view["status"] is not None else printable(str(view["error"]))
    return (
        f"{view['time']}  {printable(view['event_id'])}  {view['webhook_id']}  "
        f"#{view['attempt']}  {result}  {view['latency_ms']}ms  {view['outcome']}\n"
        f"    request:  {printable(view['request_body'][:TEXT_BODY])}\n"
        f"    response: {printable(view['response_body'][:TEXT_BODY])}"
    )


def _logs(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    try:
        since_ms = parse_duration(args.since)
    except ConfigError as exc:
        raise CommandError(f"--since: {exc}") from None
    sub = get_subscription(settings, args.id)
    topic = Topics.from_settings(settings).attempts
    codec = Codecs.load().records
    start = int(time.time() * 1000) - since_ms
    if args.follow:
        return _follow(settings, topic, codec, sub.id, start, args.output)
    collected: list[dict[str, Any]] = []
    try:
        for message in scan(settings, topic, since_ms=start):
            attempt = codec.decode_attempt(message.value())
            if attempt.subscription_id == sub.id and attempt.started_ms >= start:
                collected.append(_view(attempt))
    except ScanError as exc:
        raise CommandError(str(exc)) from None
    # By start time; a stable sort keeps the topic's write order (one partition per
    # subscription) for attempts that started in the same millisecond, as the next attempt of
    # an ordered subscription can after a fast answer.
    collected.sort(key=lambda v: v["time"])
    emit(
        args.output,
        collected,
        "\n".join(_line(v) for v in collected) or f"no attempts for {sub.id}",
    )
    return 0


def _follow(
    settings: Settings, topic: str, codec: RecordCodec, sub_id: str, start: int, output: str
) -> int:
    """Print attempts as they are written, until Ctrl-C or SIGTERM."""
    consumer = make_consumer(settings, None)
    stop = False

    def interrupted(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, interrupted)
    try:
        _assign_from(consumer, topic, start)
        while not stop:
            try:
                messages = consumer.consume(500, 0.2)
            except KeyboardInterrupt:
                break
            for message in messages:
                if message.error() is not None:
                    continue
                attempt = codec.decode_attempt(message.value())
                if attempt.subscription_id == sub_id and attempt.started_ms >= start:
                    _print_now(_view(attempt), output)
    finally:
        consumer.close()
    return 0


def _assign_from(consumer: Consumer, topic: str, start_ms: int) -> None:
    """Assign every partition of ``topic`` from the first record at or after ``start_ms``."""
    info = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if info is None or info.error is not None:
        raise CommandError(f"topic {topic} does not exist: run `webhook-worker topics ensure`")
    wanted = [TopicPartition(topic, p, start_ms) for p in sorted(info.partitions)]
    found = consumer.offsets_for_times(wanted, timeout=10)
    consumer.assign(
        [
            TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
            for tp in found
        ]
    )


def _print_now(view: dict[str, Any], output: str) -> None:
    if output == "json":
        sys.stdout.buffer.write(orjson.dumps(view) + b"\n")
    else:
        sys.stdout.write(_line(view) + "\n")
    sys.stdout.flush()
