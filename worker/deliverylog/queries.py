"""Reading the index: one subscription's attempts, deliveries and dead letters, newest first.

Every list returns ``(rows, next_cursor)``: rows are the JSON objects of the management API
(times as RFC 3339 in UTC with milliseconds), ``next_cursor`` is ``None`` on the last page.
Pages are keyset pages (see :mod:`.cursor`): no OFFSET, so a page costs the same however deep
it is, and rows written while a listing is read never shift it. Safe to call from any thread.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from worker.deliverylog.cursor import Bounds, decode_cursor, encode_cursor, filters_digest
from worker.deliverylog.schema import SUB_KEY
from worker.deliverylog.store import PARTITION_SHIFT, Store, event_key

__all__ = ["MAX_LIMIT", "DeliveryLog", "Page", "TaskRow", "rfc3339"]

MAX_LIMIT = 500
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_OFFSET_MASK = (1 << PARTITION_SHIFT) - 1

Page = tuple[list[dict[str, Any]], str | None]


class TaskRow(NamedTuple):
    """A dead letter's task as written to ``dlq`` (``RecordCodec.encode_task`` bytes)."""

    position: str  # "partition:offset" in dlq
    task: bytes
    redriven: bool


def rfc3339(ms: int) -> str:
    """``1714564800123`` -> ``"2024-05-01T12:00:00.123Z"`` (a page formats 50 of them:
    each distinct second is formatted once)."""
    seconds, millis = divmod(ms, 1000)
    return f"{_second(seconds)}.{millis:03d}Z"


@functools.lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    return (_EPOCH + timedelta(seconds=seconds)).isoformat()[:19]


def _position(row_id: int) -> str:
    return f"{row_id >> PARTITION_SHIFT}:{row_id & _OFFSET_MASK}"


class _Query:
    """One keyset query: ``WHERE`` terms, then newest first by (``time``, ``tie``), where
    ``tie`` is a Kafka position (of the row, or of a delivery's first attempt)."""

    def __init__(self, select: str, time: str, tie: str, *, hashed_event: bool = False) -> None:
        self.select = select
        self.time = time
        self.tie = tie
        self.hashed_event = hashed_event  # the table indexes event ids by event_key

    def page(
        self,
        store: Store,
        name: str,
        filters: dict[str, str | None],
        bounds: Bounds,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[tuple[Any, ...]], str | None]:
        """A page of rows matching ``filters`` (the subscription id and exact-match columns)."""
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1 to {MAX_LIMIT}, got {limit}")
        digest = filters_digest(
            name, **filters, since=bounds[0] is not None, until=bounds[1] is not None
        )
        key: tuple[Any, ...] | None = None
        if cursor is not None:
            key, bounds = decode_cursor(cursor, digest, (int, int))
        since_ms, until_ms = bounds
        where: list[str] = []
        args: list[Any] = []
        for column, value in filters.items():
            if value is None:
                continue
            if column == "subscription_id":
                where.append(f"sub = {SUB_KEY}")
            elif column == "event_id" and self.hashed_event:
                # The index holds a hash of the id: compare the id itself too.
                where.append("event_key = ? AND event_id = ?")
                args.append(event_key(value))
            else:
                where.append(f"{column} = ?")
            args.append(value)
        if since_ms is not None:
            where.append(f"{self.time} >= ?")
            args.append(since_ms)
        if until_ms is not None:
            where.append(f"{self.time} < ?")
            args.append(until_ms)
        if key is not None:
            # The range term lets the index seek; the OR finishes the row-value comparison.
            where.append(f"{self.time} <= ? AND ({self.time} < ? OR {self.tie} < ?)")
            args.extend((key[0], key[0], key[1]))
        # Without statistics SQLite would rather take an index that also sorts; an event's
        # attempts are few, so its own index is the one to use.
        indexed = (
            " INDEXED BY attempts_by_event" if self.hashed_event and filters.get("event_id") else ""
        )
        sql = (
            f"{self.select}{indexed} WHERE {' AND '.join(where)} "
            f"ORDER BY {self.time} DESC, {self.tie} DESC LIMIT ?"
        )
        rows = store.reader().execute(sql, (*args, limit + 1)).fetchall()
        if len(rows) <= limit:
            return rows, None
        rows = rows[:limit]
        last = rows[-1]
        return rows, encode_cursor(digest, (last[-2], last[-1]), bounds)


# Each SELECT ends with its sort key (time, tie), which the cursor is made of.
_ATTEMPTS = _Query(
    "SELECT webhook_id, event_id, event_type, attempt, status, outcome, error, latency_ms, "
    "response_body, started_ms, id FROM attempts",
    "started_ms",
    "id",
    hashed_event=True,
)
_DELIVERIES = _Query(
    "SELECT webhook_id, event_id, event_type, attempts, last_status, outcome, last_ms, "
    "first_ms, first_id FROM deliveries",
    "first_ms",
    "first_id",
)
_DEAD_LETTERS = _Query(
    "SELECT webhook_id, event_id, event_type, reason, attempts, last_status, last_error, "
    "(SELECT redrive_id FROM redrives WHERE redrives.dead_letter = dead_letters.id), "
    "failed_ms, id FROM dead_letters",
    "failed_ms",
    "id",
)


class DeliveryLog:
    """The queries of the management API's log routes, over a :class:`Store`.

    Filters are exact matches; ``since_ms`` is inclusive, ``until_ms`` exclusive. A
    ``cursor`` must come from the same query with the same filters, else :class:`BadCursor`;
    with a cursor, the time bounds of the listing's first page apply.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def attempts(
        self,
        subscription_id: str,
        *,
        outcome: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        event_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Every HTTP attempt, newest first (by start time)."""
        filters = {"subscription_id": subscription_id, "outcome": outcome, "event_id": event_id}
        rows, next_cursor = _ATTEMPTS.page(
            self.store, "attempts", filters, (since_ms, until_ms), limit, cursor
        )
        return [
            {
                "webhook_id": webhook_id,
                "event_id": event_id,
                "event": event_type,
                "attempt": attempt,
                "status": status,
                "outcome": outcome,
                "error": error,
                "latency_ms": latency_ms,
                "started_at": rfc3339(started_ms),
                "response_body": response_body,
            }
            for (
                webhook_id,
                event_id,
                event_type,
                attempt,
                status,
                outcome,
                error,
                latency_ms,
                response_body,
                started_ms,
                _id,
            ) in rows
        ], next_cursor

    def deliveries(
        self,
        subscription_id: str,
        *,
        outcome: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        event_id: str | None = None,
        webhook_id: str | None = None,
        event_type: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """One row per delivery (webhook-id) that made at least one attempt, newest first by
        its first attempt; ``outcome`` and ``last_status`` are those of its last attempt, and
        ``since_ms`` / ``until_ms`` bound the first attempt. The other filters are exact."""
        filters = {
            "subscription_id": subscription_id,
            "outcome": outcome,
            "event_id": event_id,
            "webhook_id": webhook_id,
            "event_type": event_type,
        }
        rows, next_cursor = _DELIVERIES.page(
            self.store, "deliveries", filters, (since_ms, until_ms), limit, cursor
        )
        return [
            {
                "webhook_id": webhook_id,
                "event_id": event_id,
                "event": event_type,
                "attempts": attempts,
                "last_status": last_status,
                "outcome": outcome,
                "first_attempt_at": rfc3339(first_ms),
                "last_attempt_at": rfc3339(last_ms),
            }
            for (
                webhook_id,
                event_id,
                event_type,
                attempts,
                last_status,
                outcome,
                last_ms,
                first_ms,
                _first_id,
            ) in rows
        ], next_cursor

    def dead_letters(
        self,
        subscription_id: str,
        *,
        since_ms: int | None = None,
        reason: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Dead letters, newest first; ``redriven_by`` is the id of the redrive that sent the
        letter again, or null."""
        filters = {"subscription_id": subscription_id, "reason": reason}
        rows, next_cursor = _DEAD_LETTERS.page(
            self.store, "dead_letters", filters, (since_ms, None), limit, cursor
        )
        return [
            {
                "position": _position(row_id),
                "webhook_id": webhook_id,
                "event_id": event_id,
                "event": event_type,
                "reason": reason,
                "attempts": attempts,
                "last_status": last_status,
                "last_error": last_error,
                "failed_at": rfc3339(failed_ms),
                "redriven_by": redriven_by,
            }
            for (
                webhook_id,
                event_id,
                event_type,
                reason,
                attempts,
                last_status,
                last_error,
                redriven_by,
                failed_ms,
                row_id,
            ) in rows
        ], next_cursor

    def dead_letter_tasks(
        self, subscription_id: str, *, since_ms: int | None = None, reason: str | None = None
    ) -> list[TaskRow]:
        """The tasks of the matching dead letters, in ``dlq`` order (the order they failed),
        for a redrive."""
        where = [f"sub = {SUB_KEY}"]
        args: list[Any] = [subscription_id]
        if since_ms is not None:
            where.append("failed_ms >= ?")
            args.append(since_ms)
        if reason is not None:
            where.append("reason = ?")
            args.append(reason)
        rows = self.store.reader().execute(
            "SELECT id, task, "
            "EXISTS (SELECT 1 FROM redrives WHERE redrives.dead_letter = dead_letters.id) "
            f"FROM dead_letters WHERE {' AND '.join(where)} ORDER BY id",
            args,
        )
        return [TaskRow(_position(row_id), task, bool(redriven)) for row_id, task, redriven in rows]

    def latest_task(self, subscription_id: str, webhook_id: str) -> bytes | None:
        """The task of the delivery's latest dead letter (to send it again), or ``None``."""
        row = self.latest_dead_letter(subscription_id, webhook_id)
        return None if row is None else row.task

    def latest_dead_letter(self, subscription_id: str, webhook_id: str) -> TaskRow | None:
        """The delivery's latest dead letter (where it is, its task, whether it was
        re-driven), or ``None``."""
        row = (
            self.store.reader()
            .execute(
                "SELECT id, task, EXISTS (SELECT 1 FROM redrives "
                "WHERE redrives.dead_letter = dead_letters.id) FROM dead_letters "
                f"WHERE sub = {SUB_KEY} AND webhook_id = ? ORDER BY id DESC LIMIT 1",
                (subscription_id, webhook_id),
            )
            .fetchone()
        )
        return None if row is None else TaskRow(_position(row[0]), bytes(row[1]), bool(row[2]))

    def delivery_attempts(self, subscription_id: str, webhook_id: str) -> list[dict[str, Any]]:
        """The attempts of one delivery, oldest first, with their Kafka position in
        ``attempts`` (``partition``, ``offset``) to read the whole record there."""
        row = (
            self.store.reader()
            .execute(
                f"SELECT event_id FROM deliveries WHERE sub = {SUB_KEY} AND webhook_id = ?",
                (subscription_id, webhook_id),
            )
            .fetchone()
        )
        if row is None:
            return []
        rows = self.store.reader().execute(
            "SELECT id, attempt, status, outcome, error, latency_ms, started_ms, response_body "
            f"FROM attempts INDEXED BY attempts_by_event WHERE event_key = ? "
            f"AND event_id = ? AND webhook_id = ? AND sub = {SUB_KEY} ORDER BY started_ms, id",
            (event_key(row[0]), row[0], webhook_id, subscription_id),
        )
        names = ("attempt", "status", "outcome", "error", "latency_ms", "started_ms")
        out = []
        for row_id, *values, response_body in rows:
            item: dict[str, Any] = dict(zip(names, values, strict=True))
            item["started_at"] = rfc3339(item.pop("started_ms"))
            item["response_body"] = response_body
            item["partition"] = row_id >> PARTITION_SHIFT
            item["offset"] = row_id & _OFFSET_MASK
            out.append(item)
        return out

    def delivery(self, subscription_id: str, webhook_id: str) -> dict[str, Any] | None:
        """One delivery's row (as :meth:`deliveries` lists it), or ``None``."""
        rows, _ = self.deliveries(subscription_id, webhook_id=webhook_id, limit=1)
        return rows[0] if rows else None
