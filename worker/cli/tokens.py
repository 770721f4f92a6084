"""``tokens``: create, list and revoke the management API's bearer tokens."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from worker.cli.common import CommandError, emit, settings_from
from worker.cli.render import table
from worker.codec.avro import AvroCodec
from worker.config import Settings
from worker.kafka.clients import make_producer
from worker.tokens.registry import TokenRegistry, TokenRegistryError, open_registry
from worker.tokens.writer import InvalidToken, TokenWriter, UnknownToken

__all__ = ["register"]

REGISTRY_LOAD_TIMEOUT_S = 30.0


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("tokens", help="manage management-API tokens")
    actions = group.add_subparsers(dest="action", required=True)

    create = actions.add_parser("create", parents=[common], help="create a token (shown once)")
    scope = create.add_mutually_exclusive_group(required=True)
    scope.add_argument("--workspace", default=None, help="the one workspace the token may use")
    scope.add_argument("--admin", action="store_true", help="a token for every workspace")
    create.add_argument("--name", default="", help="what the token is for")
    create.set_defaults(handler=_create)

    listing = actions.add_parser("list", parents=[common], help="list tokens (never a secret)")
    listing.add_argument("--workspace", default=None)
    listing.set_defaults(handler=_list)

    revoke = actions.add_parser("revoke", parents=[common], help="revoke a token")
    revoke.add_argument("id")
    revoke.set_defaults(handler=_revoke)


@contextmanager
def _registry(settings: Settings, avro: AvroCodec) -> Iterator[TokenRegistry]:
    """A registry caught up with ``api-tokens``, stopped on exit."""
    registry = open_registry(settings, avro)
    try:
        if not registry.wait_caught_up(REGISTRY_LOAD_TIMEOUT_S):
            raise CommandError("could not read the api-tokens topic to its end within 30s")
        yield registry
    except TokenRegistryError as exc:
        raise CommandError(str(exc)) from None
    finally:
        registry.stop()


@contextmanager
def _writer(args: argparse.Namespace) -> Iterator[TokenWriter]:
    """A writer whose registry is caught up; its failures become one-line errors."""
    settings = settings_from(args)
    avro = AvroCodec()
    with _registry(settings, avro) as registry:
        try:
            yield TokenWriter(settings, make_producer(settings), avro, registry)
        except (InvalidToken, UnknownToken, RuntimeError) as exc:
            raise CommandError(str(exc)) from None


def _create(args: argparse.Namespace) -> int:
    with _writer(args) as writer:
        record, token = writer.create(
            workspace=args.workspace, admin=bool(args.admin), name=args.name
        )
    document = {
        "id": record.id,
        "token": token,
        "workspace": record.workspace,
        "admin": record.admin,
        "name": record.name,
        "created_at": record.public()["created_at"],
    }
    scope = "admin (every workspace)" if record.admin else f"workspace {record.workspace}"
    text = (
        f"created token {record.id} for {scope}\n{token}\n"
        "shown only now: store it safely, only its hash is kept"
    )
    emit(args.output, document, text)
    return 0


def _list(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    with _registry(settings, AvroCodec()) as registry:
        records = registry.list(args.workspace)
    views = [record.public() for record in records]
    rows = [
        {
            **v,
            "scope": "admin" if v["admin"] else v["workspace"],
            "state": f"revoked {v['revoked_at']}" if v["revoked_at"] else "active",
        }
        for v in views
    ]
    columns = ("id", "scope", "created_at", "state", "name")
    emit(args.output, views, table(rows, columns, empty="no tokens"))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    with _writer(args) as writer:
        record = writer.revoke(args.id)
    view = record.public()
    emit(args.output, view, f"revoked token {record.id} at {view['revoked_at']}")
    return 0
