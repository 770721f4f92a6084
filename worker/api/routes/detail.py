"""One delivery in full: its attempts from the index, each with the request as sent and the
response as received, read back from the ``attempts`` topic (the index keeps only what
lists need). A record the topic no longer holds shows what the index kept."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from worker.api.deps import Ctx, Sub
from worker.api.models import DeliveryDetail
from worker.api.problems import Problem
from worker.codec.records import CodecError
from worker.deliverylog.queries import rfc3339
from worker.deliverylog.records import read_records
from worker.deliverylog.rows import RESPONSE_BODY_CHARS
from worker.deliverylog.store import TEST_PREFIX
from worker.model import Attempt

__all__ = ["attempt_records", "router"]

router = APIRouter(prefix="/v1/workspaces/{ws}/subscriptions/{id}", tags=["delivery log"])


def attempt_records(ctx: Ctx, rows: list[dict[str, Any]]) -> dict[tuple[int, int], Attempt]:
    """The attempt records at the rows' positions that the topic still holds."""
    values = read_records(
        ctx.settings, ctx.topics.attempts, [(r["partition"], r["offset"]) for r in rows]
    )
    out = {}
    for position, value in values.items():
        try:
            out[position] = ctx.codec.decode_attempt(value)
        except CodecError:
            continue
    return out


def _detail(row: dict[str, Any], record: Attempt | None) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "id": f"{row['partition']}:{row['offset']}",
        "attempt": row["attempt"],
        "started_at": row["started_at"],
        "latency_ms": row["latency_ms"],
        "status": row["status"],
        "outcome": row["outcome"],
        "error": row["error"],
        "url": None,
        "request": None,
        "response": None,
        "next_attempt_at": None,
    }
    if record is None:
        return detail
    sent = record.request_body.encode()
    detail["url"] = record.url
    detail["request"] = {
        "headers": record.request_headers,
        "body": record.request_body,
        "size": record.request_size,
        "truncated": record.request_size is not None and len(sent) < record.request_size,
    }
    # The response body as everywhere in the log: its first 500 characters.
    shown = record.response_body[:RESPONSE_BODY_CHARS]
    size = record.response_size
    detail["response"] = (
        None
        if record.status is None
        else {
            "headers": record.response_headers,
            "body": shown,
            "size": size,
            "truncated": (size is not None and len(shown.encode()) < size)
            or len(shown) < len(record.response_body),
        }
    )
    if record.outcome == "retry" and record.next_attempt_ms is not None:
        detail["next_attempt_at"] = rfc3339(record.next_attempt_ms)
    return detail


@router.get("/deliveries/{webhook_id}", response_model=DeliveryDetail)
def delivery_detail(ctx: Ctx, sub: Sub, webhook_id: str) -> dict[str, Any]:
    """A delivery and every attempt of it, oldest first: the request as sent (headers with
    the signatures, body), the response's status, headers and body (cut, with its size),
    the latency, the error when no response came, and when a retrying delivery tries next."""
    summary = ctx.log.delivery(sub.id, webhook_id[:200])
    if summary is None:
        raise Problem(404, f"no delivery {webhook_id[:200]}")
    rows = ctx.log.delivery_attempts(sub.id, webhook_id[:200])
    records = attempt_records(ctx, rows)
    return {
        **summary,
        "test": webhook_id.startswith(TEST_PREFIX),
        "attempt_details": [_detail(r, records.get((r["partition"], r["offset"]))) for r in rows],
    }
