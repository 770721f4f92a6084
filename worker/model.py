"""The records that move through the pipeline, as plain data.

Encoding lives in :mod:`worker.codec`; behaviour lives in the stages. Times are Unix
milliseconds (``*_ms``) everywhere inside the worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Attempt",
    "DeadLetter",
    "DeliveryTask",
    "EndpointHealth",
    "Event",
    "InvalidRecord",
    "RedriveMark",
]


@dataclass(slots=True)
class Event:
    """A validated input event. ``data`` is the whole JSON object as the producer sent it
    (with ``id`` and ``timestamp`` filled in when they were missing)."""

    id: str
    event: str
    workspace: str
    entity: str | None
    timestamp_ms: int
    data: dict[str, Any]
    source: str  # "topic/partition/offset" of the input record


@dataclass(slots=True)
class DeliveryTask:
    """One (event, subscription) delivery, from first try to success or dead letter.

    ``delivery_id`` is the Standard Webhooks ``webhook-id``: identical on every attempt and
    on re-drive, so receivers can dedupe. ``seq`` orders an ordered subscription's tasks: the
    offset of the task in ``deliveries``, set by the dispatcher when it first reads it
    (-1 before). ``hop`` counts how many times this task has been written to a topic, so a
    stale copy (left behind by a crash) is recognised and dropped. ``ordering`` and
    ``ordering_key`` say which lane the task waits in (see :mod:`worker.dispatch.ordering`).
    """

    delivery_id: str
    subscription_id: str
    workspace: str
    event_id: str
    event_type: str
    body: bytes
    ordered: bool = True
    event_time_ms: int = 0
    created_ms: int = 0
    seq: int = -1
    attempt: int = 0
    hop: int = 0
    due_ms: int = 0
    last_status: int | None = None
    last_error: str | None = None
    source: str = ""
    redrive_id: str | None = None
    ordering: str | None = None  # key | endpoint | none as routed; None: from ``ordered``
    ordering_key: bytes | None = None  # the event's ordering key (key scope); None: no key
    # W3C context of the event's sampled ``route`` span: each attempt is traced as its child
    # (docs/tracing.md). None: not traced.
    traceparent: str | None = None
    tracestate: str | None = None

    @property
    def scope(self) -> str:
        """The ordering scope this task was routed with (tasks written before scopes existed
        keep their meaning: ``ordered`` is the endpoint scope, unordered is none)."""
        return self.ordering or ("endpoint" if self.ordered else "none")


@dataclass(slots=True)
class Attempt:
    """One HTTP attempt, as written to the ``attempts`` topic (bodies truncated)."""

    delivery_id: str
    subscription_id: str
    workspace: str
    event_id: str
    event_type: str
    attempt: int
    started_ms: int
    latency_ms: float
    url: str
    outcome: str  # "success" | "retry" | "dead_letter"
    status: int | None = None
    error: str | None = None
    request_body: str = ""
    response_body: str = ""
    next_attempt_ms: int | None = None
    request_headers: dict[str, str] = field(default_factory=dict)
    request_size: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_size: int | None = None
    test: bool = False
    sent_again: bool = False  # a re-sent or redriven delivery (its task has a redrive id)


@dataclass(slots=True)
class DeadLetter:
    """A task that failed for good, with why, so it can be inspected and re-driven."""

    task: DeliveryTask
    reason: str  # e.g. "client_error", "retries_exhausted", "endpoint_disabled"
    attempts: int
    failed_ms: int
    last_status: int | None = None
    last_error: str | None = None
    last_response_body: str = ""


@dataclass(slots=True)
class InvalidRecord:
    """An input record that could not be decoded or validated, kept with the error."""

    error: str
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes] = field(default_factory=dict)


@dataclass(slots=True)
class RedriveMark:
    """A dead letter (by its position in ``dlq``) that a redrive has sent again."""

    dlq_partition: int
    dlq_offset: int
    delivery_id: str
    subscription_id: str
    redrive_id: str
    redriven_ms: int


@dataclass(slots=True)
class EndpointHealth:
    """An endpoint's streak of consecutive failed attempts (behind TOO_MANY_ERRORS)."""

    subscription_id: str
    failures: int
    since_ms: int
    last_ms: int
