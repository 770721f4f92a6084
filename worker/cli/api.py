"""``api``: the management API (and, with it, the portal and incoming webhooks)."""

from __future__ import annotations

import argparse
from typing import Any

from worker import eventloop
from worker.api.server import run_api
from worker.cli.common import settings_from

__all__ = ["register"]


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    api = commands.add_parser(
        "api", parents=[common], help="serve the management API (WEBHOOK_API_PORT)"
    )
    api.add_argument("--port", dest="api_port", type=int, default=None)
    api.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    api.set_defaults(handler=_api)


def _api(args: argparse.Namespace) -> int:
    settings = settings_from(args, api_port=args.api_port)
    settings.to_librdkafka()  # fails early, in one line, without a bootstrap server
    eventloop.run(run_api(settings, host=args.host), settings.event_loop)
    return 0
