"""What the API's gate asks for ``/portal/api/*``: the session cookie instead of a bearer
token, the CSRF token on every change, and the link's token still valid. Admitted requests
act as a workspace principal named ``portal`` with the token id of the link's maker, so the
management API's routes (and their workspace checks) serve the portal unchanged."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Scope

from worker.api.problems import problem_response
from worker.config import Settings
from worker.portal.csrf import HEADER, UNSAFE_METHODS, csrf_matches
from worker.portal.keys import PortalKeys
from worker.portal.sessions import CookiePolicy, Session, read_session
from worker.portal.spent import SpentLinks
from worker.tokens.model import Principal
from worker.tokens.registry import TokenRegistry, TokenRegistryError

__all__ = ["PORTAL_API_PREFIX", "Portal"]

PORTAL_API_PREFIX = "/portal/api/"
# Where the gate leaves the session and the re-issued cookie for the route and the response.
SESSION_STATE = "portal_session"
COOKIE_STATE = "portal_cookie"


@dataclass(frozen=True, slots=True)
class Portal:
    """The portal's keys, cookie policy, spent links and the token registry it checks."""

    settings: Settings
    keys: PortalKeys
    cookies: CookiePolicy
    spent: SpentLinks
    tokens: TokenRegistry

    def token_valid(self, token_id: str) -> bool:
        """The link's token exists and is not revoked; False (fail closed) when the token
        registry's follower has died."""
        try:
            self.tokens.ready()
        except TokenRegistryError:
            return False
        record = self.tokens.get(token_id)
        return record is not None and not record.revoked

    def admit(self, scope: Scope) -> Principal | Response:
        """The principal a ``/portal/api`` request acts as, or the refusal (401, 403)."""
        headers = Headers(scope=scope)
        session = read_session(self.keys, headers.get("cookie"), self.cookies.idle_ms)
        if session is None:
            return self._unauthorized("no portal session (or it has ended): open a new link")
        if not self.token_valid(session.token_id):
            return self._unauthorized("the token that made this portal link was revoked")
        if scope["method"] in UNSAFE_METHODS and not csrf_matches(
            self.keys, session.id, headers.get(HEADER)
        ):
            return problem_response(403, "missing or wrong X-CSRF-Token header")
        state = scope.setdefault("state", {})
        state[SESSION_STATE] = session
        state[COOKIE_STATE] = self.cookies.set_cookie(self.keys, session)
        return Principal(session.token_id, session.workspace, admin=False, name="portal")

    def _unauthorized(self, detail: str) -> Response:
        return problem_response(401, detail, {"set-cookie": self.cookies.clear_cookie()})


def session_of(scope: Scope) -> Session:
    session: Session = scope["state"][SESSION_STATE]
    return session
