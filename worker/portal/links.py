"""Portal links: ``<public URL>/portal/#<link>``, where the link is a signed, expiring grant
of one workspace (and the token that made it), with a nonce that is spent when the link is
opened (see :mod:`worker.portal.spent`). The link travels in the URL's fragment, which
browsers send neither to servers nor in Referer headers."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import orjson

from worker.config import Settings
from worker.portal.keys import PortalKeys, sign, verify

__all__ = [
    "DEFAULT_TTL_MS",
    "MAX_TTL_MS",
    "PortalLink",
    "base_url",
    "create_portal_link",
    "new_link",
    "portal_url",
    "read_link",
]

MAX_TTL_MS = 3_600_000
DEFAULT_TTL_MS = MAX_TTL_MS
_VERSION = 1


@dataclass(frozen=True, slots=True)
class PortalLink:
    workspace: str
    token_id: str
    expires_ms: int
    nonce: str


def new_link(
    keys: PortalKeys, workspace: str, token_id: str, ttl_ms: int = DEFAULT_TTL_MS
) -> tuple[PortalLink, str]:
    """A fresh link (``ttl_ms`` is capped at one hour) and its signed text."""
    now = int(time.time() * 1000)
    link = PortalLink(workspace, token_id, now + min(ttl_ms, MAX_TTL_MS), secrets.token_hex(16))
    payload = orjson.dumps(
        {
            "v": _VERSION,
            "ws": link.workspace,
            "tid": link.token_id,
            "exp": link.expires_ms,
            "n": link.nonce,
        }
    )
    return link, sign(keys.link, payload)


def read_link(keys: PortalKeys, text: str, now_ms: int | None = None) -> PortalLink | None:
    """The link ``text`` grants, or None when it is forged, malformed or expired."""
    payload = verify(keys.link, text.strip())
    if payload is None:
        return None
    try:
        raw = orjson.loads(payload)
        link = PortalLink(str(raw["ws"]), str(raw["tid"]), int(raw["exp"]), str(raw["n"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if raw.get("v") != _VERSION or link.expires_ms <= now:
        return None
    return link


def base_url(settings: Settings, port: int) -> str:
    """Where links point: ``WEBHOOK_PUBLIC_URL``, else this API on loopback (development)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return f"http://127.0.0.1:{port}"


def portal_url(base: str, link_text: str) -> str:
    return f"{base.rstrip('/')}/portal/#{link_text}"


def create_portal_link(
    settings: Settings,
    workspace: str,
    token_id: str,
    base_url: str,
    ttl_ms: int = DEFAULT_TTL_MS,
) -> tuple[str, int]:
    """A portal URL for ``workspace`` made in the name of token ``token_id`` (what ``dev``
    prints): ``(url, expires_ms)``. The API must share the key (same settings, or this
    process when no key is configured)."""
    link, text = new_link(PortalKeys.from_settings(settings), workspace, token_id, ttl_ms)
    return portal_url(base_url, text), link.expires_ms
