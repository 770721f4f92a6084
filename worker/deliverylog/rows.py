"""Decoded records -> the index's rows (what is kept, and how it is cut)."""

from __future__ import annotations

from worker.codec.records import RecordCodec
from worker.deliverylog.store import AttemptRow, DeadLetterRow, MarkRow, event_key, row_id
from worker.model import Attempt, DeadLetter, RedriveMark

__all__ = ["RESPONSE_BODY_CHARS", "attempt_row", "dead_letter_row", "mark_row"]

# What the management API and the portal show of a response body.
RESPONSE_BODY_CHARS = 500


def attempt_row(partition: int, offset: int, a: Attempt) -> AttemptRow:
    return (
        row_id(partition, offset),
        a.subscription_id,
        a.workspace,
        a.delivery_id,
        a.event_id,
        event_key(a.event_id),
        a.event_type,
        a.attempt,
        a.status,
        a.outcome,
        a.error,
        a.latency_ms,
        a.started_ms,
        a.response_body[:RESPONSE_BODY_CHARS],
    )


def dead_letter_row(
    partition: int, offset: int, letter: DeadLetter, codec: RecordCodec
) -> DeadLetterRow:
    task = letter.task
    return (
        row_id(partition, offset),
        task.subscription_id,
        task.workspace,
        task.delivery_id,
        task.event_id,
        task.event_type,
        letter.reason,
        letter.attempts,
        letter.last_status,
        letter.last_error,
        letter.failed_ms,
        codec.encode_task(task),
    )


def mark_row(mark: RedriveMark) -> MarkRow:
    return (row_id(mark.dlq_partition, mark.dlq_offset), mark.redrive_id, mark.redriven_ms)
