"""The delivery log's pages (``GET .../attempts``, ``.../deliveries``, ``.../dead-letters``)
answered without FastAPI's routing and dependency resolution.

A log page is what a settings page polls, and FastAPI's routing, dependencies and parameter
validation cost about twice the index query itself (bench/api/scenario.py, profiled with
py-spy). The gate (:mod:`worker.api.middleware`) has already checked the token and its rate
limit; :func:`plan` takes a request only when it is plain (a valid workspace name, known
parameters with valid values, each given once) and hands anything else back, so that the
route functions in :mod:`worker.api.routes.logs` stay the one reference: they describe the
routes in ``/openapi.json`` and answer every request this module declines, errors included.
What this module answers is what they would: the same 404s, the same rows, the same cursors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import Receive, Scope, Send

from worker.api.context import ApiContext
from worker.api.deps import (
    WORKSPACE_PATTERN,
    bad_cursor,
    parse_time,
    unknown_subscription,
    unknown_workspace,
)
from worker.api.problems import Problem, problem_response
from worker.deliverylog.cursor import BadCursor
from worker.deliverylog.queries import MAX_LIMIT
from worker.deliverylog.queries import Page as LogPage
from worker.subscriptions.service import NotFound
from worker.tokens.model import Principal

__all__ = ["plan"]

_PATH = re.compile(
    r"^/v1/workspaces/([^/]+)/subscriptions/([^/]+)/(attempts|deliveries|dead-letters)$"
)
_WORKSPACE = re.compile(WORKSPACE_PATTERN)
_OUTCOMES = frozenset({"success", "retry", "dead_letter"})
# The parameters of each page and their longest value (as the route functions declare them).
_PARAMS: dict[str, dict[str, int]] = {
    "attempts": {
        "outcome": 20,
        "since": 40,
        "until": 40,
        "event_id": 200,
        "limit": 3,
        "cursor": 500,
    },
    "deliveries": {"outcome": 20, "since": 40, "limit": 3, "cursor": 500},
    "dead-letters": {"since": 40, "reason": 40, "limit": 3, "cursor": 500},
}
_JSON_HEADERS = [(b"content-type", b"application/json")]


@dataclass(frozen=True, slots=True)
class _Route:
    """What the gate's metrics read from ``scope["route"]``: the route's template."""

    path: str


_ROUTES = {kind: _Route(f"/v1/workspaces/{{ws}}/subscriptions/{{id}}/{kind}") for kind in _PARAMS}

Handler = Callable[[Scope, Receive, Send], Any]


def plan(ctx: ApiContext, scope: Scope) -> Handler | None:
    """The handler of a plain log-page request, or None for FastAPI to answer it."""
    if scope["method"] != "GET":
        return None
    match = _PATH.match(scope["path"])
    if match is None:
        return None
    ws, sub_id, kind = match.groups()
    if not _WORKSPACE.match(ws) or len(sub_id) > 100:
        return None
    params = _params(kind, scope["query_string"])
    if params is None:
        return None
    principal: Principal = scope["state"]["principal"]
    scope["route"] = _ROUTES[kind]

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            rows, next_cursor = _page(ctx, principal, ws, sub_id, kind, params)
        except Problem as problem:
            await problem_response(problem.status, problem.detail)(scope, receive, send)
            return
        body = orjson.dumps({"data": rows, "next_cursor": next_cursor})
        headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return handler


@dataclass(frozen=True, slots=True)
class _Params:
    limit: int
    cursor: str | None
    outcome: str | None
    since_ms: int | None
    until_ms: int | None
    event_id: str | None
    reason: str | None


def _params(kind: str, query_string: bytes) -> _Params | None:
    """The page's parameters when each is known, given once and valid; else None."""
    known = _PARAMS[kind]
    given: dict[str, str] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        longest = known.get(name)
        if longest is None:
            continue  # FastAPI ignores parameters a route does not declare
        if name in given or len(value) > longest:
            return None
        given[name] = value
    limit = given.get("limit", "50")
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
        return None
    if given.get("outcome", "success") not in _OUTCOMES:
        return None
    try:
        since_ms = parse_time(given.get("since"), "since")
        until_ms = parse_time(given.get("until"), "until")
    except Problem:
        return None
    return _Params(
        int(limit),
        given.get("cursor"),
        given.get("outcome"),
        since_ms,
        until_ms,
        given.get("event_id"),
        given.get("reason"),
    )


def _page(
    ctx: ApiContext, principal: Principal, ws: str, sub_id: str, kind: str, p: _Params
) -> LogPage:
    """The page, or the route functions' 404 or 422 as a :class:`Problem`."""
    if not principal.can_access(ws):
        raise unknown_workspace(ws)
    try:
        return _query(ctx, ws, sub_id, kind, p)
    except NotFound:
        raise unknown_subscription(sub_id) from None
    except BadCursor as exc:
        raise bad_cursor(exc) from None


def _query(ctx: ApiContext, ws: str, sub_id: str, kind: str, p: _Params) -> LogPage:
    sub = ctx.service.get(sub_id, ws)
    if kind == "attempts":
        return ctx.log.attempts(
            sub.id,
            outcome=p.outcome,
            since_ms=p.since_ms,
            until_ms=p.until_ms,
            event_id=p.event_id,
            limit=p.limit,
            cursor=p.cursor,
        )
    if kind == "deliveries":
        return ctx.log.deliveries(
            sub.id, outcome=p.outcome, since_ms=p.since_ms, limit=p.limit, cursor=p.cursor
        )
    return ctx.log.dead_letters(
        sub.id, since_ms=p.since_ms, reason=p.reason, limit=p.limit, cursor=p.cursor
    )
