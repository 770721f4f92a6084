"""``event-types list``: the deployment's event-type catalogue (``WEBHOOK_EVENT_TYPES``)."""

from __future__ import annotations

import argparse
from typing import Any

from worker.catalogue import load_catalogue
from worker.cli.common import CommandError, emit, settings_from
from worker.cli.render import table

__all__ = ["register"]


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("event-types", help="the catalogue of event types")
    actions = group.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", parents=[common], help="list the catalogued types")
    listing.add_argument("--category", default=None, help="only this category's types")
    listing.set_defaults(handler=_list)


def _list(args: argparse.Namespace) -> int:
    catalogue = load_catalogue(settings_from(args))
    if catalogue is None:
        emit(args.output, [], "no event-type catalogue is configured (WEBHOOK_EVENT_TYPES)")
        return 0
    if args.category is not None and args.category not in catalogue.categories():
        raise CommandError(
            f"no category {args.category!r}; the categories are "
            + ", ".join(catalogue.categories())
        )
    views = [t.to_json() for t in catalogue.by_category(args.category)]
    text = table(views, ("name", "category", "description"), empty="no event types")
    emit(args.output, views, text)
    return 0
