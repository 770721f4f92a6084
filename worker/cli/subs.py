"""``subs``: create, list, show and delete subscriptions."""

from __future__ import annotations

import argparse
from typing import Any

from worker.app import Codecs, open_table, secret_box
from worker.cli.common import CommandError, emit, settings_from
from worker.config import Settings
from worker.kafka.clients import make_producer
from worker.subscriptions.challenge import ChallengeFailed, run_challenge
from worker.subscriptions.model import SecretEntry, Status, Subscription
from worker.subscriptions.secrets import generate_secret
from worker.subscriptions.store import (
    InvalidSubscription,
    SubscriptionWriter,
    new_subscription_id,
    now_ms,
)
from worker.subscriptions.table import TableFollower

__all__ = ["create_subscription", "public_view", "register"]

TABLE_LOAD_TIMEOUT_S = 30.0


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    subs = commands.add_parser("subs", help="manage subscriptions")
    actions = subs.add_subparsers(dest="action", required=True)

    create = actions.add_parser("create", parents=[common], help="create a subscription")
    create.add_argument("--workspace", required=True)
    create.add_argument("--url", required=True)
    create.add_argument("--events", required=True, help="comma-separated event patterns")
    create.add_argument("--entity", default=None)
    create.add_argument("--name", default="")
    create.add_argument("--description", default="")
    create.add_argument("--secret", default=None, help="whsec_... (generated when omitted)")
    create.add_argument("--unordered", action="store_true")
    create.add_argument("--skip-challenge", dest="skip_challenge", action="store_true")
    create.set_defaults(handler=_create)

    listing = actions.add_parser("list", parents=[common], help="list subscriptions")
    listing.add_argument("--workspace", default=None)
    listing.add_argument("--status", default=None, choices=[s.value for s in Status])
    listing.set_defaults(handler=_list)

    show = actions.add_parser("show", parents=[common], help="show one subscription")
    show.add_argument("id")
    show.set_defaults(handler=_show)

    delete = actions.add_parser("delete", parents=[common], help="delete a subscription")
    delete.add_argument("id")
    delete.set_defaults(handler=_delete)


def public_view(sub: Subscription) -> dict[str, Any]:
    """A subscription as shown to people: never a secret."""
    return {
        "id": sub.id,
        "workspace": sub.workspace,
        "name": sub.name,
        "description": sub.description,
        "url": sub.url,
        "events": list(sub.events),
        "entity": sub.entity,
        "ordered": sub.ordered,
        "status": sub.status.value,
        "timeout_ms": sub.timeout_ms,
        "secrets": len(sub.secrets),
        "created_ms": sub.created_ms,
        "updated_ms": sub.updated_ms,
    }


def create_subscription(
    settings: Settings,
    *,
    workspace: str,
    url: str,
    events: list[str],
    entity: str | None = None,
    name: str = "",
    description: str = "",
    secret: str | None = None,
    ordered: bool = True,
    challenge: bool = True,
) -> Subscription:
    """Validate, challenge (unless told not to) and write a new ACTIVE subscription."""
    codecs = Codecs.load()
    producer = make_producer(settings)
    writer = SubscriptionWriter(settings, producer, codecs.records, secret_box(settings))
    now = now_ms()
    sub = Subscription(
        id=new_subscription_id(),
        workspace=workspace,
        url=url,
        events=tuple(e.strip() for e in events if e.strip()),
        secrets=(SecretEntry(secret or generate_secret()),),
        name=name,
        description=description,
        entity=entity,
        timeout_ms=settings.default_timeout_ms,
        ordered=ordered,
        status=Status.ACTIVE,
        created_ms=now,
        updated_ms=now,
    )
    try:
        writer.check(sub)
        if secret is not None and not secret.startswith("whsec_"):
            raise InvalidSubscription("secrets look like whsec_<base64>")
        if challenge:
            run_challenge(
                url, [s.secret for s in sub.secrets], allow_private=settings.allow_private_networks
            )
        writer.put(sub)
    except (InvalidSubscription, ChallengeFailed) as exc:
        raise CommandError(str(exc)) from None
    return sub


def load_table(settings: Settings) -> TableFollower:
    follower = open_table(settings, Codecs.load())
    if not follower.wait_caught_up(TABLE_LOAD_TIMEOUT_S):
        follower.stop()
        raise CommandError("could not read the subscriptions topic to its end within 30s")
    return follower


def _create(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    sub = create_subscription(
        settings,
        workspace=args.workspace,
        url=args.url,
        events=args.events.split(","),
        entity=args.entity,
        name=args.name,
        description=args.description,
        secret=args.secret,
        ordered=not args.unordered,
        challenge=not args.skip_challenge,
    )
    secret = sub.secrets[0].secret
    emit(
        args.output,
        {**public_view(sub), "secret": secret},
        f"created {sub.id}\nsecret: {secret} (shown only now)",
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    follower = load_table(settings_from(args))
    try:
        subs = sorted(follower.table.index.all(), key=lambda s: (s.workspace, s.created_ms))
    finally:
        follower.stop()
    views = [
        public_view(s)
        for s in subs
        if (args.workspace is None or s.workspace == args.workspace)
        and (args.status is None or s.status.value == args.status)
    ]
    text = "\n".join(
        f"{v['id']}  {v['workspace']}  {v['status']}  {','.join(v['events'])}  {v['url']}"
        for v in views
    )
    emit(args.output, views, text or "no subscriptions")
    return 0


def _get(settings: Settings, sub_id: str) -> Subscription:
    follower = load_table(settings)
    try:
        sub = follower.table.index.get(sub_id)
    finally:
        follower.stop()
    if sub is None:
        raise CommandError(f"unknown subscription {sub_id}")
    return sub


def _show(args: argparse.Namespace) -> int:
    sub = _get(settings_from(args), args.id)
    view = public_view(sub)
    emit(args.output, view, "\n".join(f"{k}: {v}" for k, v in view.items()))
    return 0


def _delete(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    sub = _get(settings, args.id)
    writer = SubscriptionWriter(
        settings, make_producer(settings), Codecs.load().records, secret_box(settings)
    )
    writer.delete(sub.id)
    emit(args.output, {"id": sub.id, "deleted": True}, f"deleted {sub.id}")
    return 0
