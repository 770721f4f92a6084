"""An endpoint's health for the portal's list and detail pages, from the delivery-log index:
24-hour success rate, last attempt, failures in a row, and attempts per hour (24 h or 7 d)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from worker.api.deps import Ctx, Sub, WorkspaceScope
from worker.api.models import Activity, Health, HealthList
from worker.deliverylog.health import EndpointHealth

__all__ = ["router"]

router = APIRouter(prefix="/v1/workspaces/{ws}", tags=["delivery log"])
WINDOWS = {"24h": 24, "7d": 168}
MAX_IDS = 100


def _now_ms() -> int:
    return int(time.time() * 1000)


@router.get("/subscriptions/{id}/health", response_model=Health)
async def health(ctx: Ctx, sub: Sub) -> dict[str, Any]:
    """Success rate and counts over 24 hours, the last attempt, failures in a row."""
    return EndpointHealth(ctx.log.store).summary(sub.id, _now_ms())


@router.get("/subscriptions/{id}/activity", response_model=Activity)
async def activity(
    ctx: Ctx,
    sub: Sub,
    window: Annotated[Literal["24h", "7d"], Query(description="24h or 7d")] = "24h",
) -> dict[str, Any]:
    """Successful and failed attempts per hour, oldest first (Send test left out)."""
    data = EndpointHealth(ctx.log.store).activity(sub.id, WINDOWS[window], _now_ms())
    return {"window": window, "data": data}


@router.get("/subscription-health", response_model=HealthList)
async def workspace_health(
    ctx: Ctx,
    scope: WorkspaceScope,
    ids: Annotated[
        list[Annotated[str, Query(max_length=100)]] | None,
        Query(
            alias="id",
            max_length=MAX_IDS,
            description="subscription ids (repeat the parameter); default: the first",
        ),
    ] = None,
) -> dict[str, Any]:
    """The health of the workspace's subscriptions named by ``id`` (the rows a list page
    shows), or of its first ``MAX_IDS``, oldest first; ids of other workspaces are left out."""
    queries = EndpointHealth(ctx.log.store)
    now = _now_ms()
    subs = ctx.service.list(scope.workspace)
    if ids is not None:
        wanted = set(ids)
        subs = [s for s in subs if s.id in wanted]
    return {"data": [queries.summary(s.id, now) for s in subs[:MAX_IDS]]}
