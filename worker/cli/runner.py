"""``run`` (the worker) and ``dev`` (everything on the embedded broker, with a demo)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from worker import eventloop
from worker.app import ROLES, run_worker
from worker.cli.common import settings_from

__all__ = ["register"]


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    run = commands.add_parser("run", parents=[common], help="run the worker")
    run.add_argument("--role", choices=ROLES, default="all")
    run.add_argument("--metrics-port", dest="metrics_port", type=int, default=None)
    run.add_argument("--input-topics", dest="input_topics", default=None)
    run.add_argument("--group-id", dest="group_id", default=None)
    run.set_defaults(handler=_run)

    dev = commands.add_parser(
        "dev", parents=[common], help="run everything on a local broker, with a demo"
    )
    dev.add_argument(
        "--broker",
        choices=("auto", "kafka", "tansu"),
        default="auto",
        help="the local broker: Apache Kafka where Java 17+ and Maven are present (auto), "
        "or the embedded Tansu; ignored with KAFKA_BOOTSTRAP_SERVERS",
    )
    dev.add_argument("--events", type=int, default=20, help="sample events to emit")
    dev.add_argument("--metrics-port", dest="metrics_port", type=int, default=None)
    dev.add_argument(
        "--exit-after",
        dest="exit_after",
        type=int,
        default=0,
        help="stop once this many deliveries arrived (0: run until Ctrl-C)",
    )
    dev.set_defaults(handler=_dev)


def _run(args: argparse.Namespace) -> int:
    settings = settings_from(
        args,
        metrics_port=args.metrics_port,
        input_topics=args.input_topics,
        group_id=args.group_id,
    )
    settings.to_librdkafka()  # fails early, in one line, without a bootstrap server
    eventloop.run(run_worker(settings, args.role), settings.event_loop)
    return 0


def _dev(args: argparse.Namespace) -> int:
    from worker.cli.dev import run_dev

    # dev validates WEBHOOK_EVENT_LOOP with the rest of its settings, inside run_dev.
    return eventloop.run(run_dev(args), os.environ.get("WEBHOOK_EVENT_LOOP") or "uvloop")
