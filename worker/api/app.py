"""Builds the ASGI application of ``webhook-worker api`` from an :class:`ApiContext`."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from worker import __version__
from worker.api.context import ApiContext
from worker.api.deps import Bearer
from worker.api.middleware import Gate
from worker.api.problems import PROBLEM_JSON, install_handlers
from worker.api.routes import detail, health, incoming, logs, meta, sources, subscriptions
from worker.portal.routes import mount_portal

__all__ = ["build_app"]

DESCRIPTION = """\
Manage a workspace's webhook subscriptions and read their delivery log.

Authenticate with `Authorization: Bearer wwt_...` (made by `webhook-worker tokens create`).
A workspace token sees only its workspace: another workspace's resources answer 404.
Errors are `application/problem+json`. Lists page with `limit` and `cursor`.
"""


def _problem_responses() -> dict[int | str, dict[str, object]]:
    problem = {"content": {PROBLEM_JSON: {"schema": {"type": "object"}}}}
    return {
        status: {"description": text, **problem}
        for status, text in (
            (400, "malformed JSON"),
            (401, "no, bad or revoked token"),
            (404, "missing, or another workspace's"),
            (409, "a limit is reached or the state does not allow it"),
            (413, "request body too large"),
            (422, "invalid input"),
            (429, "rate-limited (see Retry-After)"),
        )
    }


def build_app(context: ApiContext) -> FastAPI:
    app = FastAPI(
        title="webhook-worker management API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        responses=_problem_responses(),
    )
    app.state.context = context
    install_handlers(app)
    secured = [Depends(Bearer)]
    app.include_router(meta.router, dependencies=secured)
    app.include_router(subscriptions.router, dependencies=secured)
    app.include_router(logs.router, dependencies=secured)
    app.include_router(detail.router, dependencies=secured)
    app.include_router(health.router, dependencies=secured)
    app.include_router(sources.router, dependencies=secured)
    app.include_router(meta.health)
    app.include_router(incoming.router)
    if context.portal is not None:
        routers = [meta.router, subscriptions.router, logs.router, detail.router, health.router]
        mount_portal(app, routers, secured)
    if context.settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(context.settings.api_cors_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["authorization", "content-type", "idempotency-key"],
        )
    app.add_middleware(Gate, context=lambda: context)
    return app
