"""The portal's HTTP surface: ``POST /v1/workspaces/{ws}/portal-links`` (bearer) makes a
link; ``POST /portal/session`` spends a link for a session cookie; ``/portal/api/session``
tells the page its workspace and CSRF token; ``/portal/`` and ``/portal/static/*`` serve
the page with a strict Content-Security-Policy. The data calls of the page are the
management API's routes, mounted again under ``/portal/api`` by :func:`mount_portal`."""

from __future__ import annotations

import html
from functools import cache
from importlib import resources
from typing import Annotated, Any
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.params import Depends as DependsParam
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import RedirectResponse, Response

from worker.api.deps import Ctx, WorkspaceScope
from worker.api.models import rfc3339
from worker.api.problems import Problem
from worker.config import ConfigError, parse_duration
from worker.portal.csrf import csrf_token
from worker.portal.gate import COOKIE_STATE, Portal, session_of
from worker.portal.links import MAX_TTL_MS, base_url, new_link, portal_url, read_link
from worker.portal.sessions import open_session
from worker.portal.spent import SpentUnknown

__all__ = ["links", "mount_portal", "pages"]

links = APIRouter(prefix="/v1/workspaces/{ws}", tags=["portal"])
pages = APIRouter(include_in_schema=False)
_STATIC = {
    "core.js": "text/javascript; charset=utf-8",
    "portal.js": "text/javascript; charset=utf-8",
    "views.js": "text/javascript; charset=utf-8",
    "forms.js": "text/javascript; charset=utf-8",
    "log.js": "text/javascript; charset=utf-8",
    "schema.js": "text/javascript; charset=utf-8",
    "detail.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "portal.css": "text/css; charset=utf-8",
}


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ttl: Annotated[str, Field(max_length=20, description="e.g. 15m; at most 1h")] | None = None


class LinkOut(BaseModel):
    url: str
    expires_at: str


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    link: Annotated[str, Field(max_length=2000)]


def _portal(ctx: Ctx) -> Portal:
    if ctx.portal is None:
        raise Problem(404, "the portal is not served here")
    return ctx.portal


@links.post("/portal-links", response_model=LinkOut)
def create_link(
    ctx: Ctx, scope: WorkspaceScope, request: Request, body: LinkIn | None = None
) -> dict[str, Any]:
    """A URL that opens the portal on this workspace, once, within ``ttl`` (default and
    maximum 1h). The link acts as the token that made it: revoking the token ends the
    sessions it opened."""
    portal = _portal(ctx)
    ttl = MAX_TTL_MS
    if body is not None and body.ttl is not None:
        try:
            ttl = parse_duration(body.ttl)
        except ConfigError as exc:
            raise Problem(422, f"ttl: {exc}") from None
        if not 0 < ttl <= MAX_TTL_MS:
            raise Problem(422, "ttl: between 1s and 1h")
    link, text = new_link(portal.keys, scope.workspace, scope.actor.id, ttl)
    port = request.scope.get("server", ("", ctx.settings.api_port))[1]
    return {
        "url": portal_url(base_url(ctx.settings, port), text),
        "expires_at": rfc3339(link.expires_ms),
    }


def _session_answer(portal: Portal, session_id: str, workspace: str) -> dict[str, Any]:
    return {
        "workspace": workspace,
        "csrf_token": csrf_token(portal.keys, session_id),
        "idle_timeout_s": portal.cookies.idle_ms // 1000,
    }


@pages.post("/portal/session")
def exchange(ctx: Ctx, request: Request, body: SessionIn) -> Response:
    """Spend a portal link for a session cookie (once, on any replica). Only JSON is accepted,
    so a cross-site form cannot log a browser into someone else's workspace."""
    portal = _portal(ctx)
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise Problem(415, "send the link as application/json")
    link = read_link(portal.keys, body.link)
    if link is None:
        raise Problem(401, "this portal link is invalid or has expired")
    if not portal.token_valid(link.token_id):
        raise Problem(401, "the token that made this portal link was revoked")
    try:
        first = portal.spent.spend(link)
    except (SpentUnknown, RuntimeError) as exc:
        raise Problem(503, f"cannot open the link now, try again: {exc}") from None
    if not first:
        raise Problem(401, "this portal link was already used: ask for a new one")
    session = open_session(link.workspace, link.token_id)
    answer = _session_answer(portal, session.id, session.workspace)
    response = Response(
        orjson.dumps(answer), media_type="application/json", headers={"cache-control": "no-store"}
    )
    response.headers.append("set-cookie", portal.cookies.set_cookie(portal.keys, session))
    return response


session_api = APIRouter(prefix="/portal/api", include_in_schema=False)


@session_api.get("/session")
def current_session(ctx: Ctx, request: Request) -> dict[str, Any]:
    """The page's workspace and CSRF token (after a reload)."""
    session = session_of(request.scope)
    return _session_answer(_portal(ctx), session.id, session.workspace)


@session_api.post("/logout", status_code=204)
def logout(ctx: Ctx, request: Request) -> Response:
    request.scope["state"][COOKIE_STATE] = _portal(ctx).cookies.clear_cookie()
    return Response(status_code=204)


def _csp(ctx: Ctx) -> str:
    images = "'self' data:"
    logo = ctx.settings.portal_logo_url
    if logo and logo.startswith("http"):
        parts = urlsplit(logo)
        images += f" {parts.scheme}://{parts.netloc}"
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        f"img-src {images}; base-uri 'none'; form-action 'self'; "
        f"frame-ancestors {ctx.settings.portal_frame_ancestors}"
    )


def _page_headers(ctx: Ctx, cache_control: str) -> dict[str, str]:
    return {
        "content-security-policy": _csp(ctx),
        "referrer-policy": "no-referrer",
        "x-content-type-options": "nosniff",
        "cache-control": cache_control,
    }


@cache
def _static(name: str) -> bytes:
    return resources.files("worker.portal").joinpath("static", name).read_bytes()


@pages.get("/portal")
def portal_root() -> Response:
    return RedirectResponse("/portal/", status_code=308)


@pages.get("/portal/")
def index(ctx: Ctx) -> Response:
    _portal(ctx)
    logo = ctx.settings.portal_logo_url
    tag = f'<img class="logo" src="{html.escape(logo)}" alt="">' if logo else ""
    page = _static("index.html").replace(b"<!--logo-->", tag.encode())
    return Response(
        page, media_type="text/html; charset=utf-8", headers=_page_headers(ctx, "no-store")
    )


@pages.get("/portal/theme.css")
def theme(ctx: Ctx) -> Response:
    css = f":root {{ --brand: {ctx.settings.portal_brand_color}; }}\n".encode()
    return Response(
        css, media_type="text/css; charset=utf-8", headers=_page_headers(ctx, "no-cache")
    )


@pages.get("/portal/static/{name}")
def static(ctx: Ctx, name: str) -> Response:
    media = _STATIC.get(name)
    if media is None:
        raise Problem(404, f"no portal file {name}")
    return Response(_static(name), media_type=media, headers=_page_headers(ctx, "no-cache"))


def mount_portal(app: FastAPI, api_routers: list[APIRouter], secured: list[DependsParam]) -> None:
    """Serve the portal on ``app``: its pages, the link route under ``/v1`` (bearer), and
    ``api_routers`` (the management API's) again under ``/portal/api`` for the page."""
    app.include_router(links, dependencies=secured)
    app.include_router(pages)
    app.include_router(session_api)
    for router in api_routers:
        app.include_router(router, prefix="/portal/api", include_in_schema=False)
