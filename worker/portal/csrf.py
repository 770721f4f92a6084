"""The CSRF token of a portal session: an HMAC of the session's id with its own key. The page
reads it from ``/portal/session`` (or ``/portal/api/session``) and sends it in
``X-CSRF-Token`` with every change; a cross-site form or fetch cannot read it."""

from __future__ import annotations

import hashlib
import hmac

from worker.portal.keys import PortalKeys, b64e

__all__ = ["HEADER", "UNSAFE_METHODS", "csrf_matches", "csrf_token"]

HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def csrf_token(keys: PortalKeys, session_id: str) -> str:
    return b64e(hmac.new(keys.csrf, session_id.encode(), hashlib.sha256).digest())


def csrf_matches(keys: PortalKeys, session_id: str, given: str | None) -> bool:
    if not given:
        return False
    return hmac.compare_digest(csrf_token(keys, session_id).encode(), given.strip().encode())
