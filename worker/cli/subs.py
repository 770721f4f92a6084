"""``subs``: create, list, show, update, enable, disable, delete and roll-secret, through the
subscription service (the same rules as the management API)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TypeVar

from worker.cli.common import CommandError, emit, settings_from
from worker.cli.context import subscription_service
from worker.cli.render import table
from worker.config import ConfigError, Settings, parse_duration
from worker.outbound.tls import fingerprint
from worker.subscriptions.edit import (
    Changes,
    parse_conditions,
    parse_header,
    parse_timeout,
    split_list,
)
from worker.subscriptions.model import MAX_IN_FLIGHT_RANGE, ORDERINGS, Status, Subscription
from worker.subscriptions.service import CLI_ACTOR, Conflict, NotFound
from worker.subscriptions.store import InvalidSubscription

T = TypeVar("T")

__all__ = ["changes_from_args", "create_subscription", "public_view", "register"]


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
    order.add_argument(
        "--ordering",
        choices=ORDERINGS,
        default=None,
        help="key: in order per ordering key (default); endpoint: strict FIFO; none",
    )
    order.add_argument(
        "--unordered", dest="ordering", action="store_const", const="none", help="= --ordering none"
    )
    order.add_argument(
        "--ordered",
        dest="ordering",
        action="store_const",
        const="endpoint",
        help="= --ordering endpoint",
    )
    parser.add_argument(
        "--max-in-flight",
        dest="max_in_flight",
        type=int,
        default=None,
        help="concurrent attempts, 1-100 (default 10; endpoint: 1)",
    )
    parser.add_argument(
        "--asymmetric",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also sign with an ed25519 key pair (v1a); its public key is in `subs show`",
    )
    parser.add_argument(
        "--client-cert",
        dest="client_cert",
        metavar="FILE",
        default=None,
        help="PEM client certificate (leaf first) presented to the receiver (mTLS)",
    )
    parser.add_argument(
        "--client-key",
        dest="client_key",
        metavar="FILE",
        default=None,
        help="its PEM private key, unencrypted (encrypted at rest with WEBHOOK_SECRETS_KEY)",
    )
    if not create:
        parser.add_argument(
            "--no-client-cert",
            dest="no_client_cert",
            action="store_true",
            help="remove the subscription's client certificate (the global one applies)",
        )
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
        "ordered": sub.scope != "none",
        "ordering": sub.scope,
        "max_in_flight": sub.in_flight_cap,
        "status": sub.status.value,
        "timeout_ms": sub.timeout_ms,
        "rate_limit": sub.rate_limit,
        "secrets": len(sub.secrets),
        "public_key": sub.signing_keys[0].public_key if sub.signing_keys else None,
        "client_cert": fingerprint(sub.client_cert) if sub.client_cert else None,
        "created_ms": sub.created_ms,
        "updated_ms": sub.updated_ms,
    }


def changes_from_args(args: argparse.Namespace) -> Changes:
    """The create/update flags as :class:`Changes` (flags not given leave fields as they are)."""
    values: dict[str, Any] = {}
    for name in ("url", "name", "description", "ordering", "asymmetric"):
        if getattr(args, name, None) is not None:
            values[name] = getattr(args, name)
    if args.events is not None:
        values["events"] = split_list(args.events)
    if args.entity is not None:
        values["entity"] = args.entity or None
    if args.fields is not None:
        values["fields"] = split_list(args.fields)
    if args.headers is not None:
        values["headers"] = tuple(parse_header(h) for h in args.headers)
    if args.filters is not None:
        values["conditions"] = parse_conditions(args.filters)
    if args.timeout is not None:
        values["timeout_ms"] = parse_timeout(args.timeout)
    if args.rate_limit is not None:
        if args.rate_limit < 0:
            raise InvalidSubscription("--rate-limit must be positive (deliveries per second)")
        values["rate_limit"] = args.rate_limit or None
    if args.max_in_flight is not None:
        values["max_in_flight"] = _max_in_flight(args.max_in_flight)
    values.update(_client_certificate(args))
    return Changes(**values)


def _client_certificate(args: argparse.Namespace) -> dict[str, str | None]:
    """``--client-cert``/``--client-key`` files read, or both cleared (``--no-client-cert``)."""
    values: dict[str, str | None] = {}
    if getattr(args, "no_client_cert", False):
        if args.client_cert is not None or args.client_key is not None:
            raise InvalidSubscription("--no-client-cert goes without --client-cert/--client-key")
        values["client_cert"] = values["client_key"] = None
    for name in ("client_cert", "client_key"):
        path = getattr(args, name, None)
        if path is not None:
            values[name] = _read_pem(path, "--" + name.replace("_", "-"))
    return values


def _read_pem(path: str, flag: str) -> str:
    try:
        with open(path, encoding="ascii") as file:
            return file.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not a PEM text file"
        raise InvalidSubscription(f"{flag}: cannot read {path}: {reason}") from None


def _max_in_flight(value: int) -> int:
    low, high = MAX_IN_FLIGHT_RANGE
    if not low <= value <= high:
        raise InvalidSubscription(f"--max-in-flight must be from {low} to {high}")
    return value


def create_subscription(
    settings: Settings,
    *,
    workspace: str,
    changes: Changes,
    secret: str | None = None,
    challenge: bool = True,
) -> Subscription:
    """Validate, challenge (unless told not to) and write a new ACTIVE subscription;
    nothing is written when any step fails (one-line CommandError)."""
    with subscription_service(settings) as service:
        return _run(
            lambda: service.create(
                workspace, changes, actor=CLI_ACTOR, secret=secret, challenge=challenge
            )
        )


def _run(action: Callable[[], T]) -> T:
    try:
        return action()
    except (InvalidSubscription, NotFound, Conflict) as exc:
        raise CommandError(str(exc)) from None


def _create(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    sub = create_subscription(
        settings,
        workspace=args.workspace,
        changes=_run(lambda: changes_from_args(args)),
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
    with subscription_service(settings_from(args)) as service:
        status = Status(args.status) if args.status else None
        subs = service.list(args.workspace, status)
    views = [public_view(s) for s in sorted(subs, key=lambda s: (s.workspace, s.created_ms))]
    columns = ("id", "workspace", "status", "name", "events", "url")
    emit(args.output, views, table(views, columns, empty="no subscriptions"))
    return 0


def _show(args: argparse.Namespace) -> int:
    with subscription_service(settings_from(args)) as service:
        view = public_view(_run(lambda: service.get(args.id)))
    emit(args.output, view, "\n".join(f"{k}: {v}" for k, v in view.items()))
    return 0


def _change(args: argparse.Namespace, verb: str, action: Any) -> int:
    with subscription_service(settings_from(args)) as service:
        sub = _run(lambda: action(service))
    emit(args.output, public_view(sub), f"{verb} {sub.id}")
    return 0


def _update(args: argparse.Namespace) -> int:
    changes = _run(lambda: changes_from_args(args))
    return _change(
        args,
        "updated",
        lambda s: s.update(args.id, changes, actor=CLI_ACTOR, challenge=not args.skip_challenge),
    )


def _enable(args: argparse.Namespace) -> int:
    return _change(args, "enabled", lambda s: s.enable(args.id, actor=CLI_ACTOR))


def _disable(args: argparse.Namespace) -> int:
    return _change(args, "disabled", lambda s: s.disable(args.id, actor=CLI_ACTOR))


def _delete(args: argparse.Namespace) -> int:
    with subscription_service(settings_from(args)) as service:
        _run(lambda: service.delete(args.id, actor=CLI_ACTOR))
    emit(args.output, {"id": args.id, "deleted": True}, f"deleted {args.id}")
    return 0


def _roll(args: argparse.Namespace) -> int:
    try:
        grace = parse_duration(args.grace)
    except ConfigError as exc:
        raise CommandError(f"--grace: {exc}") from None
    with subscription_service(settings_from(args)) as service:
        sub, new = _run(lambda: service.roll_secret(args.id, grace, actor=CLI_ACTOR))
    emit(
        args.output,
        {
            "id": sub.id,
            "secret": new,
            "grace_ms": grace,
            "public_key": sub.signing_keys[0].public_key if sub.signing_keys else None,
        },
        f"rolled {sub.id}\nsecret: {new} (shown only now; the old one signs for {args.grace})",
    )
    return 0
