"""``test-fire ID [--full] [--event-type T]``: send a realistic, signed sample event straight
from the CLI and show what the endpoint answered (HARi "Test fire", Huntress "Send Test")."""

from __future__ import annotations

import argparse
from typing import Any

from worker.catalogue import load_catalogue
from worker.cli.common import CommandError, emit, printable, settings_from
from worker.cli.context import get_subscription
from worker.subscriptions.testfire import NotSubscribed, as_json, fire

__all__ = ["register"]


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    test = commands.add_parser("test-fire", parents=[common], help="send a signed sample event")
    test.add_argument("id")
    test.add_argument("--full", action="store_true", help="the whole response body")
    test.add_argument("--event-type", dest="event_type", default=None, help="which type to send")
    test.set_defaults(handler=_fire)


def _fire(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    sub = get_subscription(settings, args.id)
    try:
        result = fire(
            sub,
            settings,
            catalogue=load_catalogue(settings),
            event_type=args.event_type,
        )
    except NotSubscribed as exc:
        raise CommandError(str(exc)) from None
    if result.error is not None:
        raise CommandError(f"test-fire to {sub.url}: {result.error}")
    view = as_json(result, full=args.full)
    more = (
        f"\n... ({len(result.body) - len(view['body'])} more characters; --full)"
        if view["truncated"]
        else ""
    )
    heading = f"HTTP {result.status} in {result.latency_ms} ms ({result.webhook_id})"
    emit(
        args.output,
        {k: v for k, v in view.items() if k != "error"},
        f"{heading}\n{printable(view['body'], lines=True)}{more}",
    )
    return 0 if result.status is not None and 200 <= result.status < 300 else 1
