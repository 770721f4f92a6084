"""``dlq list | show | redrive``: what failed for good, in full, and sending it again.

Filters (all commands but ``show``): ``--subscription``, ``--workspace``, ``--reason``,
``--since`` and ``--until`` (a duration back from now, ``2h``, or an ISO 8601 time).
``redrive`` sends each matching dead letter's task back to ``deliveries`` with its
``webhook-id`` unchanged, in ``dlq`` order (an ordered subscription's original order), at most
``--rate`` per second, and checkpoints each one so that repeating the command sends nothing
twice unless ``--force``. It refuses subscriptions that are not ACTIVE unless ``--force``.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from worker.cli.common import CommandError, emit, settings_from
from worker.cli.context import load_table
from worker.cli.render import progress_bar
from worker.components import Codecs
from worker.config import ConfigError, Settings, parse_duration
from worker.dlq.redrive import Plan, Result, plan, redrive
from worker.dlq.store import Filter, Letter, read_letters
from worker.kafka.clients import make_producer
from worker.kafka.scan import ScanError
from worker.kafka.topics import Topics

__all__ = ["parse_time", "register"]

TEXT_LIMIT = 200


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    dlq = commands.add_parser("dlq", help="inspect and re-drive dead letters")
    actions = dlq.add_subparsers(dest="action", required=True)

    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument("--subscription", help="only this subscription id")
    filters.add_argument("--workspace", help="only this workspace")
    filters.add_argument("--reason", help="only this reason (e.g. retries_exhausted)")
    filters.add_argument("--since", help="failed at or after: 2h (ago) or an ISO 8601 time")
    filters.add_argument("--until", help="failed before: 30m (ago) or an ISO 8601 time")

    listing = actions.add_parser("list", parents=[common, filters], help="list dead letters")
    listing.add_argument(
        "--limit", type=int, default=1000, help="show at most N, newest last (default 1000)"
    )
    listing.set_defaults(handler=_list)

    show = actions.add_parser("show", parents=[common], help="one dead letter in full")
    show.add_argument("id", help="a webhook-id (msg_...) or a dlq position (partition:offset)")
    show.set_defaults(handler=_show)

    again = actions.add_parser("redrive", parents=[common, filters], help="send dead letters again")
    again.add_argument("--dry-run", action="store_true", help="show what would be sent")
    again.add_argument(
        "--rate", type=float, default=100.0, help="at most N per second (0: no limit; default 100)"
    )
    again.add_argument(
        "--force",
        action="store_true",
        help="also resend what was already re-driven, and to subscriptions not ACTIVE",
    )
    again.set_defaults(handler=_redrive)


def parse_time(text: str, now_ms: int) -> int:
    """``"2h"`` -> two hours before ``now_ms``; an ISO 8601 time -> its Unix milliseconds."""
    try:
        return now_ms - parse_duration(text)
    except ConfigError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(
            f"not a time: {text!r} (use a duration like 2h, or 2026-11-22T10:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _filter(args: argparse.Namespace) -> Filter:
    now = int(time.time() * 1000)
    return Filter(
        subscription=args.subscription,
        workspace=args.workspace,
        reason=args.reason,
        since_ms=parse_time(args.since, now) if args.since else None,
        until_ms=parse_time(args.until, now) if args.until else None,
    )


def _letters(settings: Settings, wanted: Filter) -> list[Letter]:
    try:
        return list(read_letters(settings, Codecs.load().records, wanted))
    except ScanError as exc:
        raise CommandError(str(exc)) from None


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _view(item: Letter) -> dict[str, Any]:
    letter, task, mark = item.letter, item.letter.task, item.redrive
    return {
        "position": item.position,
        "failed_at": _iso(letter.failed_ms),
        "subscription_id": task.subscription_id,
        "workspace": task.workspace,
        "event_id": task.event_id,
        "event_type": task.event_type,
        "webhook_id": task.delivery_id,
        "reason": letter.reason,
        "attempts": letter.attempts,
        "last_status": letter.last_status,
        "last_error": letter.last_error,
        "redriven": None
        if mark is None
        else {"redrive_id": mark.redrive_id, "at": _iso(mark.redriven_ms)},
    }


def _line(view: dict[str, Any]) -> str:
    last = view["last_status"] if view["last_status"] is not None else view["last_error"] or "-"
    redriven = f"  redriven {view['redriven']['redrive_id']}" if view["redriven"] else ""
    return (
        f"{view['failed_at']}  {view['position']:>8}  {view['subscription_id']}  "
        f"{view['event_id']}  {view['webhook_id']}  {view['reason']}  "
        f"attempts={view['attempts']}  last={last}{redriven}"
    )


def _list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CommandError("--limit must be at least 1")
    letters = _letters(settings_from(args), _filter(args))
    total, shown = len(letters), letters[-args.limit :]
    views = [_view(item) for item in shown]
    if args.output == "json":
        emit("json", {"total": total, "dead_letters": views})
        return 0
    lines = [_line(v) for v in views]
    if total > len(shown):
        lines.append(f"({total - len(shown)} older not shown; raise --limit)")
    emit("text", None, "\n".join(lines) or "no dead letters match")
    return 0


def _show(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    position = _position(args.id)
    found = [
        item
        for item in _letters(settings, Filter())
        if (item.partition, item.offset) == position or item.letter.task.delivery_id == args.id
    ]
    if not found:
        raise CommandError(f"no dead letter {args.id}")
    item = found[-1]  # a delivery dead-lettered again after a redrive: the newest
    view = _view(item)
    task = item.letter.task
    view.update(
        {
            "last_response_body": item.letter.last_response_body,
            "ordered": task.ordered,
            "source": task.source,
            "event_time": _iso(task.event_time_ms) if task.event_time_ms else None,
            "earlier": [other.position for other in found[:-1]],
            "body": _body(task.body),
        }
    )
    if args.output == "json":
        emit("json", view)
        return 0
    body = view["body"] if isinstance(view["body"], str) else orjson.dumps(view["body"]).decode()
    lines = [f"{key}: {value}" for key, value in view.items() if key != "body"]
    emit("text", None, "\n".join([*lines, f"body: {body}"]))
    return 0


def _position(text: str) -> tuple[int, int] | None:
    partition, sep, offset = text.partition(":")
    if sep and partition.isdigit() and offset.isdigit():
        return int(partition), int(offset)
    return None


def _body(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")


def _redrive(args: argparse.Namespace) -> int:
    if args.rate < 0:
        raise CommandError("--rate must be 0 (no limit) or more")
    settings = settings_from(args)
    letters = _letters(settings, _filter(args))
    follower = load_table(settings)
    try:
        chosen = plan(letters, follower.table.index.get, force=args.force)
    finally:
        follower.stop()
    if chosen.inactive and not args.force:
        sub_id, status = next(iter(chosen.inactive.items()))
        others = f" (and {len(chosen.inactive) - 1} more)" if len(chosen.inactive) > 1 else ""
        raise CommandError(
            f"subscription {sub_id} is {status}{others}: enable it first "
            f"(`webhook-worker subs enable {sub_id}`) or pass --force"
        )
    if args.dry_run:
        _report(args.output, chosen, None, matched=len(letters))
        return 0
    producer = make_producer(settings)
    with progress_bar("redriving", sys.stderr.isatty() and bool(chosen.send)) as progress:
        result = redrive(
            producer,
            Topics.from_settings(settings),
            Codecs.load().records,
            chosen.send,
            rate=args.rate,
            progress=progress,
        )
    _report(args.output, chosen, result, matched=len(letters))
    return 1 if result.failed else 0


def _report(output: str, chosen: Plan, result: Result | None, *, matched: int) -> None:
    summary: dict[str, Any] = {
        "dry_run": result is None,
        "matched": matched,
        "to_send": len(chosen.send),
        "already_redriven": chosen.already_redriven,
        "superseded": chosen.superseded,
        "deleted_subscriptions": chosen.deleted,
        "inactive_subscriptions": chosen.inactive,
    }
    if result is not None:
        summary.update(
            {"redrive_id": result.redrive_id, "sent": result.sent, "failed": result.failed}
        )
    else:
        summary["would_send"] = [_view(item) for item in chosen.send]
    if output == "json":
        emit("json", summary)
        return
    skipped = (
        f"skipped: {chosen.already_redriven} already re-driven, {chosen.superseded} superseded, "
        f"{sum(chosen.deleted.values())} of deleted subscriptions"
    )
    if result is None:
        lines = [_line(v) for v in summary["would_send"][:TEXT_LIMIT]]
        if len(chosen.send) > TEXT_LIMIT:
            lines.append(f"... and {len(chosen.send) - TEXT_LIMIT} more")
        lines.append(f"dry run: would send {len(chosen.send)} of {matched} matched ({skipped})")
    else:
        lines = [
            f"redrive {result.redrive_id}: sent {result.sent} of {len(chosen.send)} "
            f"({matched} matched; {skipped})",
            *(f"failed: {f}" for f in result.failed),
        ]
    emit("text", None, "\n".join(lines))
