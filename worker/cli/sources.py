"""``sources``: create, list, show, delete and roll-secret incoming-webhook sources, through
the same service the management API uses."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from worker.cli.common import CommandError, emit, settings_from
from worker.cli.render import table
from worker.codec.avro import AvroCodec
from worker.components import secret_box
from worker.config import ConfigError, parse_duration
from worker.kafka.clients import make_admin, make_producer
from worker.sources.landing import ensure_topic
from worker.sources.model import Source, Verify, source_json
from worker.sources.service import InvalidSource, SourceNotFound, SourceService
from worker.sources.table import SourceTableError, open_sources

__all__ = ["register"]

LOAD_TIMEOUT_S = 30.0
CLI_ACTOR = "cli"


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("sources", help="manage incoming-webhook sources")
    actions = group.add_subparsers(dest="action", required=True)

    create = actions.add_parser("create", parents=[common], help="create a source (secret once)")
    create.add_argument("--workspace", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--topic", required=True, help="the exact topic requests land in")
    create.add_argument(
        "--verify", default=Verify.STANDARD_WEBHOOKS.value, choices=[v.value for v in Verify]
    )
    create.set_defaults(handler=_create)

    listing = actions.add_parser("list", parents=[common], help="list sources (never a secret)")
    listing.add_argument("--workspace", default=None)
    listing.set_defaults(handler=_list)

    for name, handler, text in (
        ("show", _show, "show one source (never its secret)"),
        ("delete", _delete, "delete a source (its topic stays)"),
    ):
        action = actions.add_parser(name, parents=[common], help=text)
        action.add_argument("id")
        action.set_defaults(handler=handler)

    roll = actions.add_parser("roll-secret", parents=[common], help="rotate the secret")
    roll.add_argument("id")
    roll.add_argument("--grace", default="24h", help="how long the old secret is still accepted")
    roll.set_defaults(handler=_roll)


@contextmanager
def _service(args: argparse.Namespace) -> Iterator[SourceService]:
    """The service over a table read to its end; its failures become one-line errors."""
    settings = settings_from(args)
    avro = AvroCodec()
    box = secret_box(settings)
    table = open_sources(settings, avro, box)
    try:
        if not table.wait_caught_up(LOAD_TIMEOUT_S):
            raise CommandError("could not read the sources topic to its end within 30s")
        admin = make_admin(settings)
        yield SourceService(
            settings,
            table=table,
            producer=make_producer(settings),
            avro=avro,
            box=box,
            ensure_topic=lambda name: ensure_topic(admin, name, settings),
        )
    except (InvalidSource, SourceNotFound, SourceTableError, RuntimeError) as exc:
        raise CommandError(str(exc)) from None
    finally:
        table.stop()


def _view(args: argparse.Namespace, source: Source, secret: str | None = None) -> dict[str, Any]:
    return source_json(source, settings_from(args).public_url, secret)


def _create(args: argparse.Namespace) -> int:
    with _service(args) as service:
        source, secret = service.create(
            args.workspace, args.name, args.topic, args.verify, actor=CLI_ACTOR
        )
    view = _view(args, source, secret)
    emit(
        args.output,
        view,
        f"created {source.id}: POST {view['url'] or view['path']} -> {source.topic}\n"
        f"secret: {secret} (shown only now)",
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    with _service(args) as service:
        views = [_view(args, s) for s in service.list(args.workspace)]
    columns = ("id", "workspace", "verify", "topic", "path", "name")
    emit(args.output, views, table(views, columns, empty="no sources"))
    return 0


def _show(args: argparse.Namespace) -> int:
    with _service(args) as service:
        view = _view(args, service.get(args.id))
    emit(args.output, view, "\n".join(f"{k}: {v}" for k, v in view.items()))
    return 0


def _delete(args: argparse.Namespace) -> int:
    with _service(args) as service:
        service.delete(args.id)
    emit(args.output, {"id": args.id, "deleted": True}, f"deleted {args.id}")
    return 0


def _roll(args: argparse.Namespace) -> int:
    try:
        grace = parse_duration(args.grace)
    except ConfigError as exc:
        raise CommandError(f"--grace: {exc}") from None
    with _service(args) as service:
        source, secret = service.roll_secret(args.id, grace, actor=CLI_ACTOR)
    emit(
        args.output,
        _view(args, source, secret),
        f"rolled {source.id}\nsecret: {secret} (shown only now; the old one is accepted "
        f"for {args.grace})",
    )
    return 0
