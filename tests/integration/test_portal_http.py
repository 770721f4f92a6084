"""The portal over plain HTTP against the real API and the dev broker: links (made with a
bearer token, opened once, forged and expired ones refused), the session cookie, CSRF on
every change, revocation ending sessions, one workspace only, and the page's headers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from tests.support.api import ThreadApi, Tokens, client, running_api, token_maker
from tests.support.portal import link_of, new_link, open_session, portal_settings
from tests.support.receiver import Receiver
from worker.config import Settings
from worker.portal.keys import PortalKeys
from worker.portal.links import create_portal_link
from worker.portal.links import new_link as sign_link

SECRET = "whsec_" + "B" * 32


@dataclass
class Env:
    api: ThreadApi
    tokens: Tokens
    receiver: Receiver
    settings: Settings


@pytest.fixture(scope="module")
def env(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    settings = portal_settings(kafka_bootstrap, tmp_path_factory.mktemp("portal-http"))
    with Receiver() as receiver, token_maker(settings) as tokens, running_api(settings) as api:
        yield Env(api, tokens, receiver, settings)


def _subscribe(env: Env, c: httpx.Client, ws: str, name: str) -> str:
    url = env.receiver.endpoint(name, SECRET)
    response = c.post(
        f"/v1/workspaces/{ws}/subscriptions", json={"url": url, "events": ["*"], "name": name}
    )
    assert response.status_code == 201, response.text
    sub_id: str = response.json()["id"]
    return sub_id


def test_a_link_opens_once_for_its_workspace_only(env: Env) -> None:
    with client(env.api, env.tokens.workspace("acme")) as acme:
        mine = _subscribe(env, acme, "acme", "acme-hook")
        made = acme.post("/v1/workspaces/acme/portal-links", json={"ttl": "10m"})
        assert made.status_code == 200, made.text
        url = made.json()["url"]
        assert url.startswith(f"{env.api.url}/portal/#")
        assert made.json()["expires_at"].endswith("Z")
        assert acme.post("/v1/workspaces/globex/portal-links").status_code == 404
        assert acme.post("/v1/workspaces/acme/portal-links", json={"ttl": "2h"}).status_code == 422
    with client(env.api, env.tokens.workspace("globex")) as globex:
        theirs = _subscribe(env, globex, "globex", "globex-hook")
    portal, _ = open_session(env.api.url, url)
    with closing(portal):
        cookie = portal.cookies.jar
        assert any(c.name == "ww_portal" and c.path == "/portal" for c in cookie)
        listed = portal.get("/portal/api/v1/workspaces/acme/subscriptions")
        assert listed.status_code == 200
        assert [s["id"] for s in listed.json()["data"]] == [mine]
        assert "ww_portal=" in listed.headers["set-cookie"]  # sliding: re-issued on use
        assert "HttpOnly" in listed.headers["set-cookie"]
        assert "SameSite=Lax" in listed.headers["set-cookie"]
        for path in (
            "/portal/api/v1/workspaces/globex/subscriptions",
            f"/portal/api/v1/workspaces/globex/subscriptions/{theirs}",
            f"/portal/api/v1/workspaces/acme/subscriptions/{theirs}",
        ):
            assert portal.get(path).status_code == 404
        # A session cannot make links, nor reach /v1 (bearer only).
        assert portal.get("/v1/workspaces/acme/subscriptions").status_code == 401
        assert portal.get("/portal/api/session").json()["workspace"] == "acme"
    # The same link again: spent, on this or any replica (the portal-links topic).
    again = httpx.post(f"{env.api.url}/portal/session", json={"link": link_of(url)})
    assert again.status_code == 401 and "already used" in again.json()["detail"]
    assert "set-cookie" not in again.headers


def test_forged_expired_and_foreign_links_are_refused(env: Env) -> None:
    with client(env.api, env.tokens.workspace("acme")) as acme:
        url = new_link(acme, "acme")
    link = link_of(url)
    payload, mac = link.split(".")
    forged = [
        payload + "." + mac[:-2] + ("AA" if not mac.endswith("AA") else "BB"),
        link.replace(payload, payload[:-1] + ("A" if payload[-1] != "A" else "B")),
        "garbage",
        "",
    ]
    token_id = env.tokens.registry.list("acme")[0].id
    other_key = PortalKeys.from_master(b"another deployment")
    forged.append(sign_link(other_key, "acme", token_id, 60_000)[1])
    keys = PortalKeys.from_settings(env.settings)
    expired = sign_link(keys, "acme", token_id, 1)[1]
    time.sleep(0.01)
    for text in [*forged, expired]:
        response = httpx.post(f"{env.api.url}/portal/session", json={"link": text})
        assert response.status_code in (401, 422), (text, response.text)
        assert "set-cookie" not in response.headers
    # The original is still good: the refusals spent nothing.
    open_session(env.api.url, url)[0].close()


def test_a_change_needs_the_csrf_token(env: Env) -> None:
    with client(env.api, env.tokens.workspace("acme")) as acme:
        sub = _subscribe(env, acme, "acme", "csrf-hook")
        portal, csrf = open_session(env.api.url, new_link(acme, "acme"))
    base = f"/portal/api/v1/workspaces/acme/subscriptions/{sub}"
    with closing(portal):
        for headers in ({}, {"x-csrf-token": "wrong"}, {"x-csrf-token": csrf[:-1]}):
            refused = portal.post(f"{base}/disable", headers=headers)
            assert refused.status_code == 403, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert portal.patch(base, json={"name": "x"}, headers=headers).status_code == 403
            assert portal.delete(base, headers=headers).status_code == 403
        assert portal.get(base).json()["status"] == "ACTIVE"  # nothing changed
        done = portal.post(f"{base}/disable", headers={"x-csrf-token": csrf})
        assert done.status_code == 200 and done.json()["status"] == "DISABLED"
        # The exchange itself takes JSON only (no cross-site form logins).
        form = httpx.post(f"{env.api.url}/portal/session", data={"link": "x"})
        assert form.status_code in (415, 422)


def test_revoking_the_token_ends_its_sessions(env: Env) -> None:
    token = env.tokens.workspace("acme", name="to-revoke")
    with client(env.api, token) as acme:
        portal, _ = open_session(env.api.url, new_link(acme, "acme"))
        pending = new_link(acme, "acme")
    with closing(portal):
        path = "/portal/api/v1/workspaces/acme/subscriptions"
        assert portal.get(path).status_code == 200
        env.tokens.revoke(token)
        deadline = time.monotonic() + 5
        while portal.get(path).status_code == 200:
            assert time.monotonic() < deadline, "a session outlived its token by 5 s"
            time.sleep(0.1)
        assert portal.get(path).status_code == 401
    refused = httpx.post(f"{env.api.url}/portal/session", json={"link": link_of(pending)})
    assert refused.status_code == 401


def test_an_idle_session_ends(env: Env, tmp_path: Path) -> None:
    settings = replace(env.settings, portal_idle_ms=1500, api_data_dir=str(tmp_path / "api"))
    with running_api(settings) as api, client(api, env.tokens.workspace("acme")) as acme:
        portal, _ = open_session(api.url, new_link(acme, "acme"))
        with closing(portal):
            path = "/portal/api/session"
            for _ in range(3):  # used within the idle limit: it slides
                time.sleep(0.8)
                assert portal.get(path).status_code == 200
            time.sleep(2)
            assert portal.get(path).status_code == 401


def test_the_page_is_served_with_a_strict_policy(env: Env) -> None:
    page = httpx.get(f"{env.api.url}/portal/")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'self'" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in page.text  # no inline script
    assert httpx.get(f"{env.api.url}/portal/static/portal.js").status_code == 200
    assert httpx.get(f"{env.api.url}/portal/static/../config.py").status_code == 404
    theme = httpx.get(f"{env.api.url}/portal/theme.css").text
    assert env.settings.portal_brand_color in theme
    url, expires = create_portal_link(env.settings, "acme", "tok", "https://hooks.example.com/")
    assert url.startswith("https://hooks.example.com/portal/#")
    assert expires > time.time() * 1000
