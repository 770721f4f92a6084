"""``webhook-worker``: the command line. One module per command group registers its
sub-commands; this module parses, builds settings once, and turns failures into one line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from worker import __version__
from worker.cli import (
    api,
    demo,
    dlq,
    events,
    eventtypes,
    inputs,
    logs,
    runner,
    sources,
    subs,
    testfire,
    tokens,
    topics,
)
from worker.cli.common import CommandError, settings_from
from worker.errors import WebhookWorkerError
from worker.kafka.access import check_access
from worker.observability.logging import setup_logging

__all__ = ["main"]

# Commands that need no cluster (dev starts its own unless KAFKA_BOOTSTRAP_SERVERS is set).
_NO_BROKER_CHECK = {"dev", "event-types", "demo"}


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # No abbreviations: `--rol` must not silently mean `--role` in a manifest.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"webhook-worker: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="webhook-worker", description="Kafka-native webhook delivery.")
    parser.add_argument("--version", action="version", version=f"webhook-worker {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--output", choices=("text", "json"), default="text")
    common.add_argument(
        "--bootstrap-servers",
        dest="bootstrap_servers",
        default=None,
        help="Kafka bootstrap servers (KAFKA_BOOTSTRAP_SERVERS)",
    )
    common.add_argument(
        "--topic-prefix",
        dest="topic_prefix",
        default=None,
        help="prefix of the worker's topics (WEBHOOK_TOPIC_PREFIX)",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    modules = (
        runner,
        api,
        topics,
        subs,
        events,
        eventtypes,
        testfire,
        logs,
        dlq,
        demo,
        tokens,
        sources,
        inputs,
    )
    for module in modules:
        module.register(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging("INFO" if args.command in ("run", "dev", "api") else "WARNING")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        if args.command not in _NO_BROKER_CHECK and getattr(args, "broker_check", True):
            # librdkafka retries a refused login or TLS handshake forever, seen only as
            # timeouts: name it in one line within seconds, before the command starts.
            check_access(settings_from(args))
        result: int = args.handler(args)
        return result
    except WebhookWorkerError as exc:  # the root of every error raised on purpose
        sys.stderr.write(f"webhook-worker: error: {exc}\n")
        return exc.code if isinstance(exc, CommandError) else 2
    except KeyboardInterrupt:
        return 130
