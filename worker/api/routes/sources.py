"""``/v1/workspaces/{ws}/sources``: incoming-webhook sources (create, list, read, delete,
roll the secret). The rules are the source service's; this module maps HTTP to them.
``POST /in/{source_id}`` itself is served by :class:`worker.sources.intake.Intake`, which the
gate calls directly (no bearer, no routing)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from worker.api.context import ApiContext
from worker.api.deps import Ctx, Limit, WorkspaceScope
from worker.api.models import RollIn
from worker.api.problems import Problem, service_errors
from worker.config import ConfigError, parse_duration
from worker.deliverylog.cursor import BadCursor, decode_cursor, encode_cursor, filters_digest
from worker.sources.model import source_json
from worker.sources.service import SourceService

__all__ = ["router"]

router = APIRouter(prefix="/v1/workspaces/{ws}/sources", tags=["sources"])
SourceId = Annotated[str, Path(alias="id", max_length=100)]


class SourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    topic: Annotated[str, Field(min_length=1, max_length=249)]
    verify: Literal["standard-webhooks", "hmac-sha256", "none"] = "standard-webhooks"


class SourceOut(BaseModel):
    id: str
    workspace: str
    name: str
    topic: str
    verify: Literal["standard-webhooks", "hmac-sha256", "none"]
    path: str = Field(description="POST here (on this API's host) to send to the source")
    url: str | None = Field(description="WEBHOOK_PUBLIC_URL + path, when configured")
    old_secret_expires_at: str | None
    created_at: str
    updated_at: str
    secret: str | None = Field(None, description="only in the answers of create and roll-secret")


class SourcePage(BaseModel):
    data: list[SourceOut]
    next_cursor: str | None


def _service(ctx: ApiContext) -> SourceService:
    if ctx.sources is None:
        raise Problem(404, "incoming webhooks are not served here")
    return ctx.sources


@router.post("", status_code=201, response_model=SourceOut)
def create(ctx: Ctx, scope: WorkspaceScope, body: SourceCreate) -> dict[str, Any]:
    """Create a source (and its topic when missing); the answer holds its secret, once."""
    with service_errors():
        source, secret = _service(ctx).create(
            scope.workspace, body.name, body.topic, body.verify, actor=scope.actor.id
        )
    return source_json(source, ctx.settings.public_url, secret)


@router.get("", response_model=SourcePage)
def list_sources(
    ctx: Ctx,
    scope: WorkspaceScope,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    """Oldest first; ``next_cursor`` continues the listing."""
    digest = filters_digest("sources", workspace=scope.workspace)
    after: tuple[Any, ...] = ()
    if cursor is not None:
        try:
            after, _ = decode_cursor(cursor, digest, (int, str))
        except BadCursor as exc:
            raise Problem(422, f"cursor: {exc}") from None
    found = _service(ctx).list(scope.workspace)
    if after:
        found = [s for s in found if (s.created_ms, s.id) > after]
    page = found[:limit]
    last = page[-1] if page else None
    more = len(found) > limit and last is not None
    return {
        "data": [source_json(s, ctx.settings.public_url) for s in page],
        "next_cursor": encode_cursor(digest, (last.created_ms, last.id), (None, None))
        if more and last
        else None,
    }


@router.get("/{id}", response_model=SourceOut)
def read(ctx: Ctx, scope: WorkspaceScope, source_id: SourceId) -> dict[str, Any]:
    with service_errors():
        source = _service(ctx).get(source_id, scope.workspace)
    return source_json(source, ctx.settings.public_url)


@router.delete("/{id}", status_code=204)
def delete(ctx: Ctx, scope: WorkspaceScope, source_id: SourceId) -> Response:
    """Remove the source: its URL answers 404 from then on (its topic stays)."""
    with service_errors():
        _service(ctx).delete(source_id, workspace=scope.workspace)
    return Response(status_code=204)


@router.post("/{id}/roll-secret", response_model=SourceOut)
def roll_secret(
    ctx: Ctx, scope: WorkspaceScope, source_id: SourceId, body: RollIn | None = None
) -> dict[str, Any]:
    """A new secret (in this answer only); the old one is still accepted for ``grace``."""
    try:
        grace = parse_duration(body.grace if body is not None else "24h")
    except ConfigError as exc:
        raise Problem(422, f"grace: {exc}") from None
    with service_errors():
        source, secret = _service(ctx).roll_secret(
            source_id, grace, actor=scope.actor.id, workspace=scope.workspace
        )
    return source_json(source, ctx.settings.public_url, secret)
