"""The deployment's metadata: the event-type catalogue, health, readiness and metrics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from worker.api.deps import Ctx
from worker.api.models import EventTypeOut, Page
from worker.api.problems import Problem

__all__ = ["health", "router"]

router = APIRouter(prefix="/v1", tags=["event types"])
health = APIRouter(include_in_schema=False)


@router.get("/event-types", response_model=Page[EventTypeOut])
async def event_types(
    ctx: Ctx, category: Annotated[str | None, Query(max_length=100)] = None
) -> dict[str, Any]:
    """The events this deployment's producers emit, with a JSON Schema and an example each
    (empty when no catalogue is configured: then any pattern is accepted)."""
    if ctx.catalogue is None:
        return {"data": [], "next_cursor": None}
    if category is not None and category not in ctx.catalogue.categories():
        raise Problem(422, f"category: unknown category {category!r}")
    return {
        "data": [t.to_json() for t in ctx.catalogue.by_category(category)],
        "next_cursor": None,
    }


@health.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health.get("/readyz")
def readyz(ctx: Ctx) -> Response:
    """200 once the subscription table, the tokens and the delivery-log index have caught up
    with their topics."""
    if ctx.ready():
        return Response(b'{"status":"ready"}', media_type="application/json")
    return Response(b'{"status":"starting"}', status_code=503, media_type="application/json")


@health.get("/metrics")
def metrics(ctx: Ctx) -> Response:
    ctx.metrics.index_lag.set(ctx.log_lag())
    ctx.ready()  # refreshes webhook_api_index_caught_up where nothing probes /readyz
    return Response(ctx.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
