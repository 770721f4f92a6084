"""Request and response bodies of ``/v1``: the OpenAPI description is generated from these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from worker.outbound.tls import fingerprint
from worker.subscriptions.model import Condition, Subscription

__all__ = [
    "Activity",
    "Attempt",
    "AttemptDetail",
    "DeadLetter",
    "Delivery",
    "DeliveryDetail",
    "EventTypeOut",
    "Exchange",
    "FilterIn",
    "Health",
    "HealthList",
    "Page",
    "RedriveIn",
    "RedriveOut",
    "RollIn",
    "SubscriptionCreate",
    "SubscriptionOut",
    "SubscriptionPatch",
    "TestIn",
    "TestOut",
    "rfc3339",
    "subscription_json",
]

T = TypeVar("T")
Ordering = Literal["key", "endpoint", "none"]
Text = Annotated[str, Field(max_length=1000)]
# A name, when given, says something (an empty one showed as "(unnamed)" in the portal).
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")]
Url = Annotated[str, Field(min_length=1, max_length=2048)]
Pattern = Annotated[str, Field(min_length=1, max_length=200)]
Timeout = Annotated[int, Field(ge=1, le=30_000)]
Rate = Annotated[float, Field(gt=0, le=100_000)]
Pem = Annotated[str, Field(min_length=1, max_length=65_536)]
CLIENT_CERT_DOC = (
    "PEM client certificate (leaf first, then intermediates) presented to the receiver "
    "(mTLS) instead of the global one; set with client_key"
)
CLIENT_KEY_DOC = "PEM private key of client_cert, unencrypted; never shown again"
MaxInFlight = Annotated[int, Field(ge=1, le=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FilterIn(_Strict):
    """A condition on the event JSON: ``path`` is dotted (``changes.stage.new``)."""

    path: Annotated[
        str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
    ]
    op: Literal["eq", "in", "exists"]
    values: Annotated[list[Annotated[str, Field(max_length=500)]], Field(max_length=100)] = []


class SubscriptionCreate(_Strict):
    url: Url
    events: Annotated[list[Pattern], Field(min_length=1, max_length=100)]
    name: Name = Field("", description="required in the portal; may be left out here")
    description: Text = ""
    entity: Annotated[str, Field(max_length=200)] | None = None
    filters: Annotated[list[FilterIn], Field(max_length=20)] = []
    fields: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=200)]], Field(max_length=100)
    ] = []
    headers: Annotated[dict[str, Annotated[str, Field(max_length=4096)]], Field(max_length=20)] = {}
    timeout_ms: Timeout | None = None
    rate_limit: Rate | None = None
    ordering: Ordering = "key"
    max_in_flight: MaxInFlight | None = None
    asymmetric: bool = Field(
        False, description="also sign with an ed25519 key pair (v1a); see public_key"
    )
    skip_challenge: bool = False
    client_cert: Pem | None = Field(None, description=CLIENT_CERT_DOC)
    client_key: Pem | None = Field(None, description=CLIENT_KEY_DOC)


class SubscriptionPatch(_Strict):
    """A JSON merge patch: a field left out stays, null clears it (``headers`` replaces the
    whole set)."""

    url: Url | None = None
    events: Annotated[list[Pattern], Field(min_length=1, max_length=100)] | None = None
    name: Name | None = None
    description: Text | None = None
    entity: Annotated[str, Field(max_length=200)] | None = None
    filters: Annotated[list[FilterIn], Field(max_length=20)] | None = None
    fields: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]], Field(max_length=100)]
        | None
    ) = None
    headers: (
        Annotated[dict[str, Annotated[str, Field(max_length=4096)]], Field(max_length=20)] | None
    ) = None
    timeout_ms: Timeout | None = None
    rate_limit: Rate | None = None
    ordering: Ordering | None = None
    asymmetric: bool | None = None
    max_in_flight: MaxInFlight | None = None
    skip_challenge: bool | None = None
    client_cert: Pem | None = Field(None, description=CLIENT_CERT_DOC + "; null removes both")
    client_key: Pem | None = Field(None, description=CLIENT_KEY_DOC)


class FilterOut(BaseModel):
    path: str
    op: str
    values: list[str]


class SubscriptionOut(BaseModel):
    id: str
    workspace: str
    name: str
    description: str
    url: str
    events: list[str]
    entity: str | None
    filters: list[FilterOut]
    fields: list[str]
    headers: list[str] = Field(description="the names only: values may be credentials")
    timeout_ms: int
    rate_limit: float | None
    ordering: Ordering
    max_in_flight: int | None
    status: Literal["PENDING", "ACTIVE", "DISABLED", "BLOCKED", "TOO_MANY_ERRORS"]
    status_reason: str | None
    public_key: str | None
    created_at: str
    updated_at: str
    secret: str | None = Field(None, description="only in the answers of create and roll-secret")
    client_cert: str | None = Field(
        None,
        description="sha256:<hex>, the SHA-256 fingerprint of the subscription's own client "
        "certificate (null: none); neither the certificate nor its key is shown",
    )


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None


class EventTypeOut(BaseModel):
    name: str
    category: str
    description: str
    schema_: dict[str, Any] = Field(alias="schema")
    example: dict[str, Any]

    model_config = ConfigDict(populate_by_name=True)


class RollIn(_Strict):
    grace: Annotated[str, Field(max_length=20)] = "24h"


class TestIn(_Strict):
    event_type: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    event: dict[str, Any] | None = Field(
        None,
        description="the event to send (the catalogue example, edited); its workspace is "
        "always the subscription's, its id fresh unless given",
    )


class TestOut(BaseModel):
    status: int | None
    latency_ms: float | None
    body: str
    error: str | None
    webhook_id: str
    event: str


class Attempt(BaseModel):
    webhook_id: str
    event_id: str
    event: str
    attempt: int
    status: int | None
    outcome: Literal["success", "retry", "dead_letter"]
    error: str | None
    latency_ms: float
    started_at: str
    response_body: str


class Delivery(BaseModel):
    webhook_id: str
    event_id: str
    event: str
    attempts: int
    last_status: int | None
    outcome: Literal["success", "retry", "dead_letter"]
    first_attempt_at: str
    last_attempt_at: str


class Exchange(BaseModel):
    """One side of an attempt: its header fields and body (cut: ``truncated``), and the
    body's whole size in bytes when known."""

    headers: dict[str, str]
    body: str
    size: int | None
    truncated: bool


class AttemptDetail(BaseModel):
    id: str = Field(description="the attempt's position in the attempts topic")
    attempt: int
    started_at: str
    latency_ms: float
    status: int | None
    outcome: Literal["success", "retry", "dead_letter"]
    error: str | None
    url: str | None
    request: Exchange | None = Field(description="null once the attempts topic dropped it")
    response: Exchange | None
    next_attempt_at: str | None = Field(description="when a retrying delivery tries again")


class DeliveryDetail(Delivery):
    test: bool = Field(description="sent by Send test, not for an input event")
    attempt_details: list[AttemptDetail] = Field(description="oldest first")


class Health(BaseModel):
    subscription_id: str
    attempts_24h: int
    failures_24h: int
    success_rate_24h: float | None = Field(description="0-1; null without attempts")
    last_attempt_at: str | None
    last_status: int | None
    last_outcome: Literal["success", "retry", "dead_letter"] | None
    consecutive_failures: int = Field(description="failed attempts since the last success")


class ActivityBucket(BaseModel):
    start: str
    successes: int
    failures: int


class Activity(BaseModel):
    window: Literal["24h", "7d"]
    data: list[ActivityBucket] = Field(description="one bucket per hour, oldest first")


class HealthList(BaseModel):
    data: list[Health]


class DeadLetter(BaseModel):
    position: str
    webhook_id: str
    event_id: str
    event: str
    reason: str
    attempts: int
    last_status: int | None
    last_error: str | None
    failed_at: str
    redriven_by: str | None


class RedriveIn(_Strict):
    since: Annotated[str, Field(max_length=40)] | None = None
    reason: Annotated[str, Field(max_length=40)] | None = None
    dry_run: bool = False
    force: bool = Field(
        False, description="also send deliveries an earlier redrive or re-send already sent"
    )


class RedriveOut(BaseModel):
    matched: int
    sent: int
    already_redriven: int
    skipped: int
    dry_run: bool


def rfc3339(ms: int) -> str:
    """Unix milliseconds -> ``2026-03-31T14:30:00.000Z``."""
    text = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _filter(condition: Condition) -> dict[str, Any]:
    return {"path": condition.path, "op": condition.op, "values": list(condition.values)}


def subscription_json(sub: Subscription, secret: str | None = None) -> dict[str, Any]:
    """A subscription as the API shows it: never a secret, unless ``secret`` is given (the
    answers of create and roll-secret)."""
    document: dict[str, Any] = {
        "id": sub.id,
        "workspace": sub.workspace,
        "name": sub.name,
        "description": sub.description,
        "url": sub.url,
        "events": list(sub.events),
        "entity": sub.entity,
        "filters": [_filter(c) for c in sub.conditions],
        "fields": list(sub.fields),
        "headers": [name for name, _ in sub.headers],
        "timeout_ms": sub.timeout_ms,
        "rate_limit": sub.rate_limit,
        "ordering": sub.scope,
        "max_in_flight": sub.in_flight_cap,
        "status": sub.status.value,
        "status_reason": sub.status_reason,
        "public_key": sub.signing_keys[0].public_key if sub.signing_keys else None,
        "created_at": rfc3339(sub.created_ms),
        "updated_at": rfc3339(sub.updated_ms),
        "client_cert": fingerprint(sub.client_cert) if sub.client_cert else None,
    }
    if secret is not None:
        document["secret"] = secret
    return document
