"""A subscription's delivery log, from the API's index (never a topic scan): attempts,
deliveries, dead letters; re-send of a failed delivery and redrive of dead letters, which
write tasks to ``deliveries`` the way ``dlq redrive`` does."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Response

from worker.api.deps import Ctx, Limit, Sub, bad_cursor, parse_time
from worker.api.models import Attempt, DeadLetter, Delivery, Page, RedriveIn, RedriveOut
from worker.api.problems import Problem
from worker.api.routes.detail import attempt_records
from worker.deliverylog.cursor import BadCursor
from worker.deliverylog.queries import Page as LogPage
from worker.deliverylog.queries import TaskRow
from worker.deliverylog.store import TEST_PREFIX
from worker.dlq.redrive import redrive
from worker.dlq.store import Letter
from worker.kafka.writes import produce_acked
from worker.model import DeadLetter as DeadLetterRecord
from worker.model import DeliveryTask
from worker.subscriptions.model import Status

__all__ = ["router"]

router = APIRouter(prefix="/v1/workspaces/{ws}/subscriptions/{id}", tags=["delivery log"])
Outcome = Literal["success", "retry", "dead_letter"]
Cursor = Annotated[str | None, Query(max_length=500)]
TimeParam = Annotated[str | None, Query(max_length=40, description="RFC 3339 or a duration (2h)")]


async def _page(query: Callable[[], LogPage]) -> Response:
    """Run an index query on the event loop: each is one bounded keyset read (at most 501
    rows from an index), cheaper than the hop to a thread and back, which measured 1.7 times
    the CPU per request (bench/api/scenario.py). The rows are written as the index builds
    them, in the documented shape (the schemathesis test checks them against it):
    validating them again through the response model cost about as much as the query."""
    try:
        rows, next_cursor = query()
    except BadCursor as exc:
        raise bad_cursor(exc) from None
    body = orjson.dumps({"data": rows, "next_cursor": next_cursor})
    return Response(body, media_type="application/json")


@router.get("/attempts", response_model=Page[Attempt])
async def attempts(
    ctx: Ctx,
    sub: Sub,
    outcome: Outcome | None = None,
    since: TimeParam = None,
    until: TimeParam = None,
    event_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """Every HTTP attempt, newest first (response bodies cut at 500 characters)."""
    since_ms, until_ms = parse_time(since, "since"), parse_time(until, "until")
    return await _page(
        lambda: ctx.log.attempts(
            sub.id,
            outcome=outcome,
            since_ms=since_ms,
            until_ms=until_ms,
            event_id=event_id,
            limit=limit,
            cursor=cursor,
        ),
    )


@router.get("/deliveries", response_model=Page[Delivery])
async def deliveries(
    ctx: Ctx,
    sub: Sub,
    outcome: Outcome | None = None,
    since: TimeParam = None,
    until: TimeParam = None,
    event_id: Annotated[str | None, Query(max_length=200)] = None,
    webhook_id: Annotated[str | None, Query(max_length=200)] = None,
    event: Annotated[str | None, Query(max_length=200, description="the event type")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """One row per delivery (webhook-id), newest first by its first attempt: its attempts
    and last outcome; ``since``/``until`` bound the first attempt, the rest match exactly."""
    since_ms, until_ms = parse_time(since, "since"), parse_time(until, "until")
    return await _page(
        lambda: ctx.log.deliveries(
            sub.id,
            outcome=outcome,
            since_ms=since_ms,
            until_ms=until_ms,
            event_id=event_id,
            webhook_id=webhook_id,
            event_type=event,
            limit=limit,
            cursor=cursor,
        ),
    )


@router.post("/deliveries/{webhook_id}/resend", status_code=202, response_model=None)
def resend_delivery(ctx: Ctx, sub: Sub, webhook_id: str) -> Response:
    """Send a delivery again as a new task with the same webhook-id and body. A dead-lettered
    one is taken from its dead letter, which is marked as re-driven (a later redrive does not
    send it once more); any other from its last attempt record, whose body is kept whole up
    to 64 KiB (a larger one answers 409)."""
    if sub.status is not Status.ACTIVE:
        raise Problem(409, f"subscription {sub.id} is {sub.status.value}: enable it first")
    webhook_id = webhook_id[:200]
    row = ctx.log.latest_dead_letter(sub.id, webhook_id)
    if row is not None:
        _send(ctx, [row])
        return Response(status_code=202)
    if webhook_id.startswith(TEST_PREFIX):
        raise Problem(409, "a test is not re-sent: send a new test instead")
    attempts = ctx.log.delivery_attempts(sub.id, webhook_id)
    if not attempts:
        raise Problem(404, f"no delivery {webhook_id}")
    record = attempt_records(ctx, attempts[-1:]).get(
        (attempts[-1]["partition"], attempts[-1]["offset"])
    )
    body = record.request_body.encode() if record is not None else b""
    if record is None or record.request_size is None or len(body) != record.request_size:
        raise Problem(
            409, f"the body of {webhook_id} was not kept whole in the log: it cannot be re-sent"
        )
    now = int(time.time() * 1000)
    task = DeliveryTask(
        delivery_id=webhook_id,
        subscription_id=sub.id,
        workspace=sub.workspace,
        event_id=record.event_id,
        event_type=record.event_type,
        body=body,
        ordering="none",  # sent on its own: not held behind the key's or endpoint's order
        ordered=False,
        created_ms=now,
        redrive_id=f"rs_{uuid.uuid4().hex[:16]}",
    )
    produce_acked(ctx.producer, ctx.topics.deliveries, ctx.codec.encode_task(task), sub.id.encode())
    return Response(status_code=202)


def _send(ctx: Ctx, rows: list[TaskRow]) -> int:
    """Write the tasks of ``rows`` to ``deliveries``, each followed by its redrive mark."""
    letters = []
    for row in rows:
        partition, offset = (int(part) for part in row.position.split(":"))
        task = ctx.codec.decode_task(row.task)
        letters.append(Letter(partition, offset, DeadLetterRecord(task, "", 0, 0)))
    outcome = redrive(ctx.producer, ctx.topics, ctx.codec, letters, rate=0)
    if outcome.failed:
        raise Problem(503, f"the broker did not acknowledge every task: {outcome.failed[0]}")
    return outcome.sent


@router.get("/dead-letters", response_model=Page[DeadLetter])
async def dead_letters(
    ctx: Ctx,
    sub: Sub,
    since: TimeParam = None,
    reason: Annotated[str | None, Query(max_length=40)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """Deliveries that failed for good, newest first, with the redrive that re-sent each."""
    since_ms = parse_time(since, "since")
    return await _page(
        lambda: ctx.log.dead_letters(
            sub.id, since_ms=since_ms, reason=reason, limit=limit, cursor=cursor
        ),
    )


@router.post("/dead-letters/redrive", response_model=RedriveOut)
def redrive_dead_letters(ctx: Ctx, sub: Sub, body: RedriveIn | None = None) -> dict[str, Any]:
    """Send the subscription's dead letters again (oldest first, each delivery once, at its
    newest letter), skipping deliveries an earlier redrive or re-send already sent, unless
    ``force``."""
    body = body or RedriveIn(force=False)
    since_ms = parse_time(body.since, "since")
    rows = ctx.log.dead_letter_tasks(sub.id, since_ms=since_ms, reason=body.reason)
    newest = {ctx.codec.decode_task(r.task).delivery_id: r.position for r in rows}
    chosen = [
        r
        for r in rows
        if newest[ctx.codec.decode_task(r.task).delivery_id] == r.position
        and (body.force or not r.redriven)
    ]
    sent = {r.position for r in chosen}
    already = sum(1 for r in rows if r.redriven and r.position not in sent)
    result = {
        "matched": len(rows),
        "sent": 0,
        "already_redriven": already,
        "skipped": len(rows) - len(chosen) - already,
        "dry_run": body.dry_run,
    }
    if body.dry_run or not chosen:
        return result
    if sub.status is not Status.ACTIVE:
        raise Problem(409, f"subscription {sub.id} is {sub.status.value}: enable it first")
    result["sent"] = _send(ctx, chosen)
    return result
