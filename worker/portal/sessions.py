"""The portal's session: a signed cookie holding the workspace, the token that made the
link, the session's id, when it was issued and when it was last used. Sliding idle expiry:
every request re-issues the cookie with a new last-used time; a session idle longer than
``WEBHOOK_PORTAL_IDLE`` (or older than :data:`MAX_AGE_MS`) is over.

Cookie attributes: ``HttpOnly``, ``Path=/portal``; ``SameSite=Lax`` when the page is only
framed by itself; ``SameSite=None; Secure; Partitioned`` when
``WEBHOOK_PORTAL_FRAME_ANCESTORS`` lets another site frame it (the CSRF token then protects
changes); ``Secure`` whenever ``WEBHOOK_PUBLIC_URL`` is https."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, replace
from http.cookies import SimpleCookie

import orjson

from worker.config import Settings
from worker.portal.keys import PortalKeys, sign, verify

__all__ = ["COOKIE", "MAX_AGE_MS", "CookiePolicy", "Session", "open_session", "read_session"]

COOKIE = "ww_portal"
MAX_AGE_MS = 12 * 3_600_000


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    workspace: str
    token_id: str
    issued_ms: int
    seen_ms: int


def open_session(workspace: str, token_id: str) -> Session:
    now = int(time.time() * 1000)
    return Session(secrets.token_hex(16), workspace, token_id, now, now)


def _encode(keys: PortalKeys, session: Session) -> str:
    payload = orjson.dumps(
        {
            "sid": session.id,
            "ws": session.workspace,
            "tid": session.token_id,
            "iat": session.issued_ms,
            "seen": session.seen_ms,
        }
    )
    return sign(keys.session, payload)


def read_session(
    keys: PortalKeys, cookie_header: str | None, idle_ms: int, now_ms: int | None = None
) -> Session | None:
    """The live session of a ``Cookie`` header, or None (none, forged, idle or too old)."""
    if not cookie_header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header)
    except Exception:
        return None
    morsel = jar.get(COOKIE)
    payload = verify(keys.session, morsel.value) if morsel is not None else None
    if payload is None:
        return None
    try:
        raw = orjson.loads(payload)
        session = Session(
            str(raw["sid"]), str(raw["ws"]), str(raw["tid"]), int(raw["iat"]), int(raw["seen"])
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if now - session.seen_ms > idle_ms or now - session.issued_ms > MAX_AGE_MS:
        return None
    return session


@dataclass(frozen=True, slots=True)
class CookiePolicy:
    secure: bool
    embedded: bool
    idle_ms: int

    @classmethod
    def from_settings(cls, settings: Settings) -> CookiePolicy:
        https = (settings.public_url or "").startswith("https://")
        sources = settings.portal_frame_ancestors.split()
        embedded = any(s not in ("'self'", "'none'") for s in sources)
        return cls(secure=https or embedded, embedded=embedded, idle_ms=settings.portal_idle_ms)

    def set_cookie(self, keys: PortalKeys, session: Session, now_ms: int | None = None) -> str:
        """The ``Set-Cookie`` value that (re-)issues ``session`` with last use ``now``."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        value = _encode(keys, replace(session, seen_ms=now))
        parts = [
            f"{COOKIE}={value}",
            "Path=/portal",
            "HttpOnly",
            f"Max-Age={-(-self.idle_ms // 1000) + 5}",
        ]
        if self.embedded:
            parts += ["SameSite=None", "Secure", "Partitioned"]
        else:
            parts.append("SameSite=Lax")
            if self.secure:
                parts.append("Secure")
        return "; ".join(parts)

    def clear_cookie(self) -> str:
        parts = [f"{COOKIE}=", "Path=/portal", "HttpOnly", "Max-Age=0"]
        if self.embedded:
            parts += ["SameSite=None", "Secure", "Partitioned"]
        else:
            parts.append("SameSite=Lax")
        return "; ".join(parts)
