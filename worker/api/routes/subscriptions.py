"""``/v1/workspaces/{ws}/subscriptions``: create, list, read, change, enable, disable, delete,
roll the secret, test-fire. Every rule is the subscription service's; this module only maps
HTTP to it and its errors to problem documents."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel

from worker.api.deps import Ctx, Limit, Sub, WorkspaceScope
from worker.api.idempotency import (
    IdempotencyConflict,
    IdempotencyMismatch,
    request_hash,
)
from worker.api.models import (
    FilterIn,
    Page,
    RollIn,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionPatch,
    TestIn,
    TestOut,
    subscription_json,
)
from worker.api.problems import Problem, service_errors
from worker.config import ConfigError, parse_duration
from worker.deliverylog.cursor import BadCursor, decode_cursor, encode_cursor, filters_digest
from worker.kafka.writes import produce_acked
from worker.subscriptions.edit import Changes
from worker.subscriptions.model import Condition, Status, Subscription
from worker.subscriptions.testfire import FireResult, as_json, attempt_of_test, fire

__all__ = ["router"]

router = APIRouter(prefix="/v1/workspaces/{ws}/subscriptions", tags=["subscriptions"])
T = TypeVar("T")
log = logging.getLogger(__name__)
EXCERPT = 500
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]


def _conditions(filters: list[FilterIn]) -> tuple[Condition, ...]:
    conditions = []
    for f in filters:
        wanted = {"eq": (1, 1), "in": (1, 100), "exists": (0, 0)}[f.op]
        if not wanted[0] <= len(f.values) <= wanted[1]:
            raise Problem(422, f"filters: {f.op} on {f.path} takes {wanted[0]}-{wanted[1]} values")
        conditions.append(Condition(f.path, f.op, tuple(f.values)))
    return tuple(conditions)


def _changes(ctx: Ctx, body: BaseModel, given: set[str]) -> Changes:
    """A create body or merge patch as :class:`Changes` (only the fields it names)."""
    values: dict[str, Any] = {}
    for name in given:
        value = getattr(body, name)
        if name in ("url", "events", "ordering") and value is None:
            raise Problem(422, f"{name}: cannot be cleared")
        if name == "events":
            values["events"] = tuple(value)
        elif name in (
            "url",
            "entity",
            "rate_limit",
            "client_cert",
            "client_key",
            "ordering",
            "max_in_flight",
        ):
            values[name] = value
        elif name in ("name", "description"):
            values[name] = value or ""
        elif name == "filters":
            values["conditions"] = _conditions(value or [])
        elif name == "fields":
            values["fields"] = tuple(value or ())
        elif name == "headers":
            values["headers"] = tuple((value or {}).items())
        elif name == "timeout_ms":
            values["timeout_ms"] = value or ctx.settings.default_timeout_ms
        elif name == "asymmetric":
            values["asymmetric"] = bool(value)
    return Changes(**values)


def _challenge(scope: WorkspaceScope, skip: bool | None) -> bool:
    if skip and not scope.admin:
        raise Problem(403, "skip_challenge needs an admin token")
    return not skip


@router.post("", status_code=201, response_model=SubscriptionOut)
def create(
    ctx: Ctx,
    scope: WorkspaceScope,
    body: SubscriptionCreate,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Create a subscription (after its challenge); the answer holds its secret, once."""
    challenge = _challenge(scope, body.skip_challenge)
    changes = _changes(ctx, body, body.model_fields_set | {"events", "url"})

    def run() -> tuple[int, dict[str, Any]]:
        with service_errors():
            sub = ctx.service.create(
                scope.workspace, changes, actor=scope.actor, challenge=challenge
            )
        return 201, subscription_json(sub, sub.secrets[0].secret)

    if idempotency_key is None:
        return run()[1]
    digest = request_hash("create", body.model_dump_json().encode())
    try:
        status, answer = ctx.idempotency.run(scope.workspace, idempotency_key, digest, run)
    except IdempotencyMismatch as exc:
        raise Problem(422, str(exc)) from None
    except IdempotencyConflict as exc:
        raise Problem(409, str(exc)) from None
    response.status_code = status
    return answer


@router.get("", response_model=Page[SubscriptionOut])
async def list_subscriptions(
    ctx: Ctx,
    scope: WorkspaceScope,
    status: Status | None = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    """Oldest first; ``next_cursor`` continues the listing."""
    digest = filters_digest("subscriptions", workspace=scope.workspace, status=status)
    after: tuple[Any, ...] = ()
    if cursor is not None:
        try:
            after, _ = decode_cursor(cursor, digest, (int, str))
        except BadCursor as exc:
            raise Problem(422, f"cursor: {exc}") from None
    subs = ctx.service.list(scope.workspace, status)
    if after:
        subs = [s for s in subs if (s.created_ms, s.id) > after]
    page = subs[:limit]
    more = len(subs) > limit
    last = page[-1] if page else None
    return {
        "data": [subscription_json(s) for s in page],
        "next_cursor": encode_cursor(digest, (last.created_ms, last.id), (None, None))
        if more and last
        else None,
    }


@router.get("/{id}", response_model=SubscriptionOut)
async def read(sub: Sub) -> dict[str, Any]:
    return subscription_json(sub)


@router.patch("/{id}", response_model=SubscriptionOut)
def patch(ctx: Ctx, scope: WorkspaceScope, sub: Sub, body: SubscriptionPatch) -> dict[str, Any]:
    """A JSON merge patch: fields left out stay, null clears (``url`` and ``events`` cannot
    be cleared); a new URL is challenged again."""
    challenge = _challenge(scope, body.skip_challenge)
    given = body.model_fields_set - {"skip_challenge"}
    with service_errors():
        changed = ctx.service.update(
            sub.id,
            _changes(ctx, body, given),
            actor=scope.actor,
            workspace=scope.workspace,
            challenge=challenge,
        )
    return subscription_json(changed)


@router.delete("/{id}", status_code=204)
def delete(ctx: Ctx, scope: WorkspaceScope, sub: Sub) -> Response:
    with service_errors():
        ctx.service.delete(sub.id, actor=scope.actor, workspace=scope.workspace)
    return Response(status_code=204)


@router.post("/{id}/enable", response_model=SubscriptionOut)
def enable(ctx: Ctx, scope: WorkspaceScope, sub: Sub) -> dict[str, Any]:
    """Back to ACTIVE. A workspace token cannot lift an operator's BLOCKED (409)."""
    return _status(lambda: ctx.service.enable(sub.id, actor=scope.actor, workspace=scope.workspace))


@router.post("/{id}/disable", response_model=SubscriptionOut)
def disable(ctx: Ctx, scope: WorkspaceScope, sub: Sub) -> dict[str, Any]:
    """DISABLED through a workspace token, BLOCKED through an admin token."""
    return _status(
        lambda: ctx.service.disable(sub.id, actor=scope.actor, workspace=scope.workspace)
    )


def _status(action: Callable[[], Any]) -> dict[str, Any]:
    with service_errors():
        return subscription_json(action())


@router.post("/{id}/roll-secret", response_model=SubscriptionOut)
def roll_secret(
    ctx: Ctx, scope: WorkspaceScope, sub: Sub, body: RollIn | None = None
) -> dict[str, Any]:
    """A new secret (in this answer only); the old one keeps signing for ``grace``."""
    grace_text = body.grace if body is not None else "24h"
    try:
        grace = parse_duration(grace_text)
    except ConfigError as exc:
        raise Problem(422, f"grace: {exc}") from None
    if grace > 7 * 86_400_000:
        raise Problem(422, "grace: at most 7d")
    with service_errors():
        rolled, secret = ctx.service.roll_secret(
            sub.id, grace, actor=scope.actor, workspace=scope.workspace
        )
    return subscription_json(rolled, secret)


@router.post("/{id}/test", response_model=TestOut)
def test(ctx: Ctx, sub: Sub, body: TestIn | None = None) -> dict[str, Any]:
    """Send a signed example event now (``event``: an edited one); what the endpoint answered
    (body: 500 characters). The attempt is recorded in the delivery log, marked as a test."""
    event_type = body.event_type if body is not None else None
    known = ctx.catalogue is None or event_type is None or ctx.catalogue.get(event_type)
    if not known:
        raise Problem(
            422,
            f"event_type: {event_type} is not a catalogued event type",
            errors=[{"field": "event_type", "message": "Not an event type of this service."}],
        )
    with service_errors():
        result = fire(
            sub,
            ctx.settings,
            catalogue=ctx.catalogue,
            event_type=event_type,
            event=body.event if body is not None else None,
        )
    record_test(ctx, sub, result)
    view = as_json(result)
    view.pop("truncated")
    return view


def record_test(ctx: Ctx, sub: Subscription, result: FireResult) -> None:
    """Write the test's attempt to ``attempts`` (the log shows it, marked as a test). A
    failed write costs the log entry, not the test's answer."""
    attempt = attempt_of_test(sub, result, int(time.time() * 1000))
    try:
        produce_acked(
            ctx.producer, ctx.topics.attempts, ctx.codec.encode_attempt(attempt), sub.id.encode()
        )
    except Exception as exc:  # the broker: logged, the caller still gets its result
        log.warning("could not record the test of %s in the log: %s", sub.id, exc)
