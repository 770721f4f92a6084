"""``subs``: create, list, show, update, enable, disable, delete and roll-secret."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from worker.app import Codecs, open_table, secret_box
from worker.cli.common import CommandError, emit, settings_from
from worker.config import ConfigError, Settings, parse_duration
from worker.kafka.clients import make_producer
from worker.outbound.destinations import DestinationPolicy
from worker.outbound.tls import client_ssl_context
from worker.subscriptions.challenge import ChallengeCache, ChallengeFailed, run_challenge
from worker.subscriptions.edit import Changes, apply_changes
from worker.subscriptions.model import SecretEntry, Status, Subscription
from worker.subscriptions.secrets import generate_secret
from worker.subscriptions.store import (
    InvalidSubscription,
    SubscriptionWriter,
    new_subscription_id,
    now_ms,
)
from worker.subscriptions.table import TableFollower

__all__ = ["create_subscription", "get_subscription", "load_table", "public_view", "register"]

TABLE_LOAD_TIMEOUT_S = 30.0


def _add_options(parser: argparse.ArgumentParser, *, create: bool) -> None:
    parser.add_argument("--url", required=create, default=None)
    parser.add_argument(
        "--events",
        required=create,
        default=None,
        help="comma-separated patterns: record.created, contact.*, *, x.saved",
    )
    parser.add_argument("--entity", default=None, help="only events of this entity")
    parser.add_argument("--name", default=None)
    parser.add_argument("--description", default=None)
    parser.add_argument(
        "--filter",
        dest="filters",
        action="append",
        default=None,
        help="path=value, path=a|b or path? (repeatable; all must hold)",
    )
    parser.add_argument("--fields", default=None, help="record fields to deliver: id,name")
    parser.add_argument(
        "--header",
        dest="headers",
        action="append",
        default=None,
        help="custom header 'Name: value' (repeatable)",
    )
    parser.add_argument("--timeout", default=None, help="per attempt, at most 30s")
    parser.add_argument(
        "--rate-limit",
        dest="rate_limit",
        type=float,
        default=None,
        help="deliveries per second (0: unlimited)",
    )
    order = parser.add_mutually_exclusive_group()
    order.add_argument("--unordered", dest="ordered", action="store_false", default=None)
    order.add_argument("--ordered", dest="ordered", action="store_true", default=None)
    parser.add_argument("--skip-challenge", dest="skip_challenge", action="store_true")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    subs = commands.add_parser("subs", help="manage subscriptions")
    actions = subs.add_subparsers(dest="action", required=True)

    create = actions.add_parser("create", parents=[common], help="create a subscription")
    create.add_argument("--workspace", required=True)
    create.add_argument("--secret", default=None, help="whsec_... (generated when omitted)")
    _add_options(create, create=True)
    create.set_defaults(handler=_create)

    listing = actions.add_parser("list", parents=[common], help="list subscriptions")
    listing.add_argument("--workspace", default=None)
    listing.add_argument("--status", default=None, choices=[s.value for s in Status])
    listing.set_defaults(handler=_list)

    for name, handler, text in (
        ("show", _show, "show one subscription (never its secret)"),
        ("delete", _delete, "delete a subscription"),
        ("enable", _enable, "set ACTIVE (and reset the failure count)"),
        ("disable", _disable, "set BLOCKED: deliveries become dead letters"),
    ):
        sub = actions.add_parser(name, parents=[common], help=text)
        sub.add_argument("id")
        sub.set_defaults(handler=handler)

    update = actions.add_parser("update", parents=[common], help="change a subscription")
    update.add_argument("id")
    _add_options(update, create=False)
    update.set_defaults(handler=_update)

    roll = actions.add_parser("roll-secret", parents=[common], help="rotate the signing secret")
    roll.add_argument("id")
    roll.add_argument("--grace", default="24h", help="how long the old secret still signs")
    roll.set_defaults(handler=_roll)


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
        "filters": [
            f"{c.path}?" if c.op == "exists" else f"{c.path}={'|'.join(c.values)}"
            for c in sub.conditions
        ],
        "fields": list(sub.fields),
        "headers": [name for name, _ in sub.headers],
        "ordered": sub.ordered,
        "status": sub.status.value,
        "timeout_ms": sub.timeout_ms,
        "rate_limit": sub.rate_limit,
        "secrets": len(sub.secrets),
        "created_ms": sub.created_ms,
        "updated_ms": sub.updated_ms,
    }


def _changes(args: argparse.Namespace) -> Changes:
    return Changes(
        url=args.url,
        events=args.events,
        entity=args.entity,
        name=args.name,
        description=args.description,
        filters=args.filters,
        fields=args.fields,
        headers=args.headers,
        timeout=args.timeout,
        rate_limit=args.rate_limit,
        ordered=args.ordered,
    )


def _writer(settings: Settings) -> SubscriptionWriter:
    return SubscriptionWriter(
        settings, make_producer(settings), Codecs.load().records, secret_box(settings)
    )


def _challenge(settings: Settings, sub: Subscription) -> None:
    cache = ChallengeCache(settings.challenge_cache)
    if cache.recent(sub.url):
        return
    run_challenge(
        sub.url,
        [s.secret for s in sub.secrets],
        destinations=DestinationPolicy.from_settings(settings),
        ssl_context=client_ssl_context(settings),
        proxy=settings.egress_proxy,
    )
    cache.remember(sub.url)


def create_subscription(
    settings: Settings,
    *,
    workspace: str,
    changes: Changes,
    secret: str | None = None,
    challenge: bool = True,
) -> Subscription:
    """Validate, challenge (unless told not to) and write a new ACTIVE subscription;
    nothing is written when any step fails."""
    if secret is not None and not secret.startswith("whsec_"):
        raise CommandError("secrets look like whsec_<base64>")
    now = now_ms()
    blank = Subscription(
        id=new_subscription_id(),
        workspace=workspace,
        url="",
        events=(),
        secrets=(SecretEntry(secret or generate_secret()),),
        timeout_ms=settings.default_timeout_ms,
        status=Status.ACTIVE,
        created_ms=now,
        updated_ms=now,
    )
    writer = _writer(settings)
    try:
        sub = apply_changes(blank, changes)
        writer.check(sub)
        if settings.max_endpoints_per_workspace:
            _check_limit(settings, workspace)
        if challenge:
            _challenge(settings, sub)
        writer.put(sub)
    except (InvalidSubscription, ChallengeFailed) as exc:
        raise CommandError(str(exc)) from None
    return sub


def _check_limit(settings: Settings, workspace: str) -> None:
    follower = load_table(settings)
    try:
        count = len(follower.table.index.by_workspace(workspace))
    finally:
        follower.stop()
    if count >= settings.max_endpoints_per_workspace:
        raise InvalidSubscription(
            f"workspace {workspace} already has {count} endpoints "
            f"(WEBHOOK_MAX_ENDPOINTS_PER_WORKSPACE={settings.max_endpoints_per_workspace})"
        )


def load_table(settings: Settings) -> TableFollower:
    follower = open_table(settings, Codecs.load())
    if not follower.wait_caught_up(TABLE_LOAD_TIMEOUT_S):
        follower.stop()
        raise CommandError("could not read the subscriptions topic to its end within 30s")
    return follower


def get_subscription(settings: Settings, sub_id: str) -> Subscription:
    follower = load_table(settings)
    try:
        sub = follower.table.index.get(sub_id)
    finally:
        follower.stop()
    if sub is None:
        raise CommandError(f"unknown subscription {sub_id}")
    return sub


_get = get_subscription


def _create(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    sub = create_subscription(
        settings,
        workspace=args.workspace,
        changes=_changes(args),
        secret=args.secret,
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


def _show(args: argparse.Namespace) -> int:
    view = public_view(get_subscription(settings_from(args), args.id))
    emit(args.output, view, "\n".join(f"{k}: {v}" for k, v in view.items()))
    return 0


def _save(args: argparse.Namespace, settings: Settings, sub: Subscription, verb: str) -> int:
    try:
        _writer(settings).put(replace(sub, updated_ms=now_ms()))
    except InvalidSubscription as exc:
        raise CommandError(str(exc)) from None
    emit(args.output, public_view(sub), f"{verb} {sub.id}")
    return 0


def _update(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    old = get_subscription(settings, args.id)
    try:
        sub = apply_changes(old, _changes(args))
        _writer(settings).check(sub)
        if sub.url != old.url and not args.skip_challenge:
            _challenge(settings, sub)
    except (InvalidSubscription, ChallengeFailed) as exc:
        raise CommandError(str(exc)) from None
    return _save(args, settings, sub, "updated")


def _enable(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    sub = get_subscription(settings, args.id)
    return _save(args, settings, replace(sub, status=Status.ACTIVE), "enabled")


def _disable(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    sub = get_subscription(settings, args.id)
    return _save(args, settings, replace(sub, status=Status.BLOCKED), "disabled")


def _delete(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    sub = get_subscription(settings, args.id)
    _writer(settings).delete(sub.id)
    emit(args.output, {"id": sub.id, "deleted": True}, f"deleted {sub.id}")
    return 0


def _roll(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    try:
        grace = parse_duration(args.grace)
    except ConfigError as exc:
        raise CommandError(f"--grace: {exc}") from None
    sub = get_subscription(settings, args.id)
    now = now_ms()
    new = generate_secret()
    # Newest first: it signs first; the old one signs too until the grace period ends.
    kept = (
        tuple(
            SecretEntry(s.secret, min(s.expires_ms or now + grace, now + grace))
            for s in sub.secrets
            if s.expires_ms is None or s.expires_ms > now
        )
        if grace > 0
        else ()
    )
    rolled = replace(sub, secrets=(SecretEntry(new), *kept), updated_ms=now)
    _writer(settings).put(rolled)
    emit(
        args.output,
        {"id": sub.id, "secret": new, "grace_ms": grace},
        f"rolled {sub.id}\nsecret: {new} (shown only now; the old one signs for {args.grace})",
    )
    return 0
