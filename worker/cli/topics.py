"""``topics ensure``: create the worker's topics with the right configs; check existing ones."""

from __future__ import annotations

import argparse
from typing import Any

from worker.cli.common import CommandError, emit, settings_from
from worker.kafka.admin import TopicsError, ensure_topics
from worker.kafka.clients import make_admin
from worker.kafka.topics import Topics

__all__ = ["register"]


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("topics", help="manage the worker's topics")
    actions = group.add_subparsers(dest="action", required=True)
    ensure = actions.add_parser("ensure", parents=[common], help="create or check topics")
    ensure.add_argument("--partitions", type=int, default=12)
    ensure.add_argument(
        "--replication-factor",
        dest="replication_factor",
        type=int,
        default=None,
        help="copies of each new topic (default: WEBHOOK_REPLICATION_FACTOR, else the cluster's)",
    )
    ensure.set_defaults(handler=_ensure)


def _ensure(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    factor = args.replication_factor or settings.replication_factor
    if args.partitions < 1 or (args.replication_factor is not None and args.replication_factor < 1):
        raise CommandError("--partitions and --replication-factor must be at least 1")
    inputs = [] if settings.input_topics.startswith("^") else settings.input_topic_list()
    try:
        report = ensure_topics(
            make_admin(settings),
            Topics.from_settings(settings),
            partitions=args.partitions,
            replication_factor=factor,
            input_topics=inputs,
        )
    except TopicsError as exc:
        raise CommandError(str(exc)) from None
    emit(args.output, report.to_json(), report.summary())
    if report.problems:
        raise CommandError("; ".join(report.problems))
    return 0
