"""Route dependencies: the context, the caller's workspace scope (404 for another's), the
subscription a path names (404), time and paging parameters (422).

The dependencies only read memory, so they are coroutines: they run on the event loop, not
through a worker thread each."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPBearer

from worker.api.context import ApiContext
from worker.api.problems import Problem
from worker.config import ConfigError, parse_duration
from worker.subscriptions.model import Subscription
from worker.subscriptions.service import Actor, NotFound
from worker.tokens.model import Principal

__all__ = [
    "WORKSPACE_PATTERN",
    "Bearer",
    "Ctx",
    "Limit",
    "Scope",
    "Sub",
    "WorkspaceScope",
    "context",
    "parse_time",
]

# Declares the scheme in the OpenAPI description; the Gate middleware does the checking.
Bearer = HTTPBearer(auto_error=False, description="an API token: wwt_<id>_<secret>")
WORKSPACE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,199}$"
_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


async def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.context
    return ctx


Ctx = Annotated[ApiContext, Depends(context)]


@dataclass(frozen=True, slots=True)
class Scope:
    """The workspace a request acts on, and who acts."""

    workspace: str
    actor: Actor
    admin: bool


def unknown_workspace(ws: str) -> Problem:
    """Another workspace's resource, or none: the same 404 either way."""
    return Problem(404, f"unknown workspace {ws}")


def unknown_subscription(sub_id: str) -> Problem:
    return Problem(404, f"unknown subscription {sub_id}")


def bad_cursor(exc: Exception) -> Problem:
    return Problem(422, f"cursor: {exc}")


async def workspace_scope(
    request: Request, ws: Annotated[str, Path(pattern=WORKSPACE_PATTERN, max_length=200)]
) -> Scope:
    principal: Principal = request.state.principal
    if not principal.can_access(ws):
        raise unknown_workspace(ws)
    return Scope(ws, Actor(principal.token_id, operator=principal.admin), principal.admin)


WorkspaceScope = Annotated[Scope, Depends(workspace_scope)]


async def subscription(
    ctx: Ctx, scope: WorkspaceScope, sub_id: Annotated[str, Path(alias="id", max_length=100)]
) -> Subscription:
    try:
        return ctx.service.get(sub_id, scope.workspace)
    except NotFound:
        raise unknown_subscription(sub_id) from None


Sub = Annotated[Subscription, Depends(subscription)]
Limit = Annotated[int, Query(ge=1, le=500, description="page size (1-500)")]


def parse_time(text: str | None, name: str) -> int | None:
    """``since``/``until``: RFC 3339 with an offset, or a duration back from now (``2h``)."""
    if text is None:
        return None
    try:
        return int(time.time() * 1000) - parse_duration(text)
    except ConfigError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise Problem(
            422, f"{name}: expected RFC 3339 with an offset or a duration like 2h, got {text!r}"
        )
    return int(when.timestamp() * 1000)


def check_id(value: str, what: str) -> str:
    if not _ID.match(value):
        raise Problem(404, f"unknown {what} {value}")
    return value
