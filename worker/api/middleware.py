"""The gate every request passes before a route: the bearer token of ``/v1`` (401), or the
portal's session cookie and CSRF token for ``/portal/api`` (401, 403; see
:mod:`worker.portal.gate`), the token's rate limit (429 with Retry-After), the body cap
(413), and the request's metrics.

Authentication runs here, before FastAPI reads a body, so the order of checks holds for
every route: 401 before 404 before 422.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker.api.context import ApiContext
from worker.api.fastlog import plan as log_page
from worker.api.problems import Problem, problem_response
from worker.api.ratelimit import RateLimiter
from worker.portal.gate import COOKIE_STATE, PORTAL_API_PREFIX

__all__ = ["BodyTooLarge", "Gate"]

BEARER_PREFIXES = ("/v1/",)
# Incoming webhooks: no bearer (the source's signature is checked), bodies up to
# WEBHOOK_MAX_EVENT_BYTES.
INCOMING_PREFIX = "/in/"


class BodyTooLarge(Problem):
    def __init__(self, cap: int) -> None:
        super().__init__(413, f"the request body is larger than {cap} bytes")


class Gate:
    """Pure ASGI middleware (no per-request objects beyond what a check needs)."""

    def __init__(self, app: ASGIApp, context: Callable[[], ApiContext]) -> None:
        self._app = app
        self._context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        ctx = self._context()
        start = time.perf_counter()
        status = 500

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                cookie = scope.get("state", {}).get(COOKIE_STATE)
                if cookie is not None:  # the portal's sliding session, re-issued
                    extra = [(b"set-cookie", cookie.encode()), (b"cache-control", b"no-store")]
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            refusal = self._refuse(ctx, scope)
            if refusal is not None:
                await refusal(scope, receive, send_counted)
                return
            app = self._app
            if ctx.intake is not None and scope["path"].startswith(INCOMING_PREFIX):
                app = ctx.intake.asgi  # the hot path skips the management API's routing
            elif (page := log_page(ctx, scope)) is not None:
                app = page  # so do plain log pages (see worker.api.fastlog)
            await app(scope, _capped(receive, _body_cap(ctx, scope)), send_counted)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "other")
            ctx.metrics.request(template, scope["method"], status, time.perf_counter() - start)

    @staticmethod
    def _refuse(ctx: ApiContext, scope: Scope) -> Response | None:
        headers = Headers(scope=scope)
        cap = _body_cap(ctx, scope)
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > cap:
            if scope["path"].startswith(INCOMING_PREFIX):
                ctx.metrics.incoming("too_large")
            return problem_response(413, f"the request body is larger than {cap} bytes")
        if scope["path"].startswith(PORTAL_API_PREFIX):
            if ctx.portal is None:
                return problem_response(404, "the portal is not served here")
            admitted = ctx.portal.admit(scope)
            if isinstance(admitted, Response):
                return admitted
            principal = admitted
        elif scope["path"].startswith(BEARER_PREFIXES):
            authenticated = ctx.tokens.authenticate(headers.get("authorization"))
            if authenticated is None:
                return problem_response(
                    401,
                    "a valid API token is required: Authorization: Bearer wwt_...",
                    {"www-authenticate": "Bearer"},
                )
            principal = authenticated
        else:
            return None
        wait = ctx.limiter.take(principal.token_id)
        if wait > 0:
            ctx.metrics.rate_limited()
            return problem_response(
                429,
                "too many requests for this token",
                {"retry-after": RateLimiter.retry_after(wait)},
            )
        scope.setdefault("state", {})["principal"] = principal
        return None


def _body_cap(ctx: ApiContext, scope: Scope) -> int:
    if scope["path"].startswith(INCOMING_PREFIX):
        return ctx.settings.max_event_bytes
    return ctx.settings.api_max_body_bytes


def _capped(receive: Receive, cap: int) -> Receive:
    """``receive`` that raises 413 once a body (chunked or lying about its length) passes
    ``cap`` bytes."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > cap:
                raise BodyTooLarge(cap)
        return message

    return wrapped
