"""The management API's subscription routes against the dev broker and a real receiver:
auth, workspace isolation, every bad input as problem+json, idempotent create, the merge
patch, status changes, roll-secret and test-fire."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.api import ThreadApi, Tokens, api_settings, client, running_api, token_maker
from tests.support.receiver import Receiver, Reply
from worker.catalogue import example_catalogue_path
from worker.config import Settings

PROBLEM = "application/problem+json"


@dataclass
class Env:
    api: ThreadApi
    tokens: Tokens
    receiver: Receiver
    settings: Settings

    def url(self, name: str, reply: Callable[[int, bytes], Reply] | None = None) -> str:
        return self.receiver.endpoint(name, "whsec_" + "A" * 32, reply)


@pytest.fixture
def env(settings_factory: Callable[..., Settings], tmp_path: Path) -> Iterator[Env]:
    settings = api_settings(
        settings_factory(event_types=str(example_catalogue_path()), max_endpoints_per_workspace=3),
        str(tmp_path / "api"),
    )
    with Receiver() as receiver, token_maker(settings) as tokens, running_api(settings) as api:
        yield Env(api, tokens, receiver, settings)


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    return body


def _create(c: httpx.Client, ws: str, url: str, **fields: Any) -> dict[str, Any]:
    response = c.post(f"/v1/workspaces/{ws}/subscriptions", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_tokens_are_required_and_checked(env: Env) -> None:
    path = "/v1/workspaces/acme/subscriptions"
    with client(env.api, None) as anonymous:
        body = _problem(anonymous.get(path), 401)
        assert "token" in body["detail"]
        # Authentication comes before the body is read: malformed JSON without a token is 401.
        _problem(anonymous.post(path, content=b"{nope"), 401)
    for bad in ("wwt_tok00000000000000000000_" + "x" * 43, "garbage", ""):
        with client(env.api, bad, valid=False) as c:
            _problem(c.get(path), 401)
    token = env.tokens.workspace("acme")
    with client(env.api, token) as c:
        assert c.get(path).status_code == 200
        env.tokens.revoke(token)
        deadline = time.monotonic() + 5
        while c.get(path).status_code == 200:
            assert time.monotonic() < deadline, "a revoked token still works after 5 s"
            time.sleep(0.1)
        _problem(c.get(path), 401)


def test_create_read_list_and_the_secret_shown_once(env: Env) -> None:
    url = env.url("hook")
    with client(env.api, env.tokens.workspace("acme")) as c:
        created = _create(
            c,
            "acme",
            url,
            events=["contact.*", "deal.stage_changed"],
            name="CRM sync",
            description="pushes contacts to the CRM",
            headers={"X-Team": "sales"},
            filters=[{"path": "record.stage", "op": "in", "values": ["won", "lost"]}],
            fields=["id", "name"],
            timeout_ms=5000,
        )
        secret = created["secret"]
        assert secret.startswith("whsec_")
        # The challenge reached the endpoint, signed with the new secret.
        challenge = env.receiver.received("hook")[0]
        Webhook(secret).verify(challenge.body, challenge.headers)
        assert set(challenge.json) == {"challenge"}
        shown = c.get(f"/v1/workspaces/acme/subscriptions/{created['id']}").json()
        assert "secret" not in shown or shown["secret"] is None
        assert secret not in c.get(f"/v1/workspaces/acme/subscriptions/{created['id']}").text
        assert shown["headers"] == ["X-Team"]  # names only: values may be credentials
        assert shown["filters"] == [{"path": "record.stage", "op": "in", "values": ["won", "lost"]}]
        assert shown["status"] == "ACTIVE" and shown["ordering"] == "key"
        assert shown["max_in_flight"] == 10
        assert shown["workspace"] == "acme" and shown["name"] == "CRM sync"
        assert shown["created_at"].endswith("Z")
        for i in range(2):
            _create(c, "acme", url, events=["contact.created"], name=f"n{i}")
        first = c.get("/v1/workspaces/acme/subscriptions", params={"limit": 2}).json()
        assert len(first["data"]) == 2 and first["next_cursor"]
        rest = c.get(
            "/v1/workspaces/acme/subscriptions",
            params={"limit": 2, "cursor": first["next_cursor"]},
        ).json()
        assert rest["next_cursor"] is None
        ids = [s["id"] for s in first["data"] + rest["data"]]
        assert len(ids) == len(set(ids)) == 3 and ids[0] == created["id"]
        assert all("secret" not in s or s["secret"] is None for s in first["data"])


def test_workspace_isolation_on_every_route(env: Env) -> None:
    with client(env.api, env.tokens.workspace("acme")) as acme:
        sub = _create(acme, "acme", env.url("a"), events=["*"])
    with client(env.api, env.tokens.workspace("globex")) as globex:
        own = f"/v1/workspaces/globex/subscriptions/{sub['id']}"
        theirs = f"/v1/workspaces/acme/subscriptions/{sub['id']}"
        for base in (own, theirs):
            for method, suffix, body in (
                ("GET", "", None),
                ("PATCH", "", {"name": "mine"}),
                ("DELETE", "", None),
                ("POST", "/enable", None),
                ("POST", "/disable", None),
                ("POST", "/roll-secret", {"grace": "1h"}),
                ("POST", "/test", None),
                ("GET", "/attempts", None),
                ("GET", "/deliveries", None),
                ("POST", "/deliveries/msg_x/resend", None),
                ("GET", "/dead-letters", None),
                ("POST", "/dead-letters/redrive", {}),
            ):
                response = globex.request(method, base + suffix, json=body)
                _problem(response, 404)
        _problem(globex.get("/v1/workspaces/acme/subscriptions"), 404)
        _problem(globex.post("/v1/workspaces/acme/subscriptions", json={"url": "x"}), 404)
        assert globex.get("/v1/workspaces/globex/subscriptions").json()["data"] == []
    with client(env.api, env.tokens.admin()) as admin:
        assert admin.get(f"/v1/workspaces/acme/subscriptions/{sub['id']}").status_code == 200
        _problem(admin.get(f"/v1/workspaces/globex/subscriptions/{sub['id']}"), 404)


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"url": "ftp://example.com/x", "events": ["*"]}, 422, "URL"),
        ({"url": "https://user:pw@example.com/x", "events": ["*"]}, 422, "credentials"),
        ({"url": "https://example.com/x", "events": []}, 422, "events"),
        ({"url": "https://example.com/x", "events": ["no.such_type"]}, 422, "unknown event"),
        ({"url": "https://example.com/x", "events": ["bad pattern!"]}, 422, "pattern"),
        ({"url": "https://example.com/x", "events": ["*"], "timeout_ms": 0}, 422, "timeout_ms"),
        (
            {"url": "https://example.com/x", "events": ["*"], "headers": {"A\r\nB": "1"}},
            422,
            "header",
        ),
        (
            {"url": "https://example.com/x", "events": ["*"], "headers": {"X-A": "1\r\nX-B: 2"}},
            422,
            "control",
        ),
        (
            {"url": "https://example.com/x", "events": ["*"], "headers": {"Webhook-Id": "1"}},
            422,
            "set by the delivery",
        ),
        (
            {
                "url": "https://example.com/x",
                "events": ["*"],
                "filters": [{"path": "a", "op": "eq"}],
            },
            422,
            "values",
        ),
        (
            {
                "url": "https://example.com/x",
                "events": ["*"],
                "filters": [{"path": "a b", "op": "exists"}],
            },
            422,
            "path",
        ),
        (
            {"url": "https://example.com/x", "events": ["*"], "ordering": "sideways"},
            422,
            "ordering",
        ),
        (
            {"url": "https://example.com/x", "events": ["*"], "max_in_flight": 101},
            422,
            "max_in_flight",
        ),
        ({"url": "https://example.com/x", "events": ["*"], "unknown": 1}, 422, "unknown"),
        ({"url": "https://example.com/x", "events": ["*"], "skip_challenge": True}, 403, "admin"),
        ({"events": ["*"]}, 422, "url"),
    ],
)
def test_bad_input_is_a_problem_and_writes_nothing(
    env: Env, body: dict[str, Any], status: int, needle: str
) -> None:
    with client(env.api, env.tokens.workspace("acme")) as c:
        problem = _problem(c.post("/v1/workspaces/acme/subscriptions", json=body), status)
        assert needle.lower() in problem["detail"].lower()
        assert c.get("/v1/workspaces/acme/subscriptions").json()["data"] == []


def test_malformed_requests(env: Env) -> None:
    with client(env.api, env.tokens.workspace("acme")) as c:
        path = "/v1/workspaces/acme/subscriptions"
        _problem(
            c.post(path, content=b"{not json", headers={"content-type": "application/json"}), 400
        )
        _problem(c.get(path, params={"limit": 0}), 422)
        _problem(c.get(path, params={"limit": 501}), 422)
        _problem(c.get(path, params={"cursor": "bm9wZQ"}), 422)
        _problem(c.get(path, params={"status": "SLEEPING"}), 422)
        sub = _create(c, "acme", env.url("m"), events=["*"])
        attempts = f"{path}/{sub['id']}/attempts"
        _problem(c.get(attempts, params={"since": "yesterday"}), 422)
        _problem(c.get(attempts, params={"since": "2026-01-01T00:00:00"}), 422)  # no offset
        assert c.get(attempts, params={"since": "2h"}).status_code == 200
        assert c.get(attempts, params={"since": "2026-01-01T00:00:00+02:00"}).status_code == 200
        # A cursor of one query is refused by another.
        _problem(c.get(attempts, params={"outcome": "retry", "cursor": _cursor_of(c, path)}), 422)
        _problem(
            c.post(path, content=b"x" * 300_000, headers={"content-type": "application/json"}), 413
        )
        # Checks run in order: 404 (another workspace) before 422 (bad input).
        _problem(c.post("/v1/workspaces/other/subscriptions", json={"url": 1}), 404)
        _problem(c.patch(f"{path}/sub_missing", json={"timeout_ms": -1}), 404)


def _cursor_of(c: httpx.Client, path: str) -> str:
    cursor: str = c.get(path, params={"limit": 1}).json()["next_cursor"] or "eyJ4Ijox"
    return cursor


def test_idempotent_create(env: Env) -> None:
    url = env.url("idem")
    with client(env.api, env.tokens.workspace("acme")) as c:
        path = "/v1/workspaces/acme/subscriptions"
        body = {"url": url, "events": ["contact.created"]}
        key = {"Idempotency-Key": "create-1"}
        first = c.post(path, json=body, headers=key)
        again = c.post(path, json=body, headers=key)
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()  # the same subscription, and its secret
        assert len(c.get(path).json()["data"]) == 1
        _problem(c.post(path, json={**body, "name": "other"}, headers=key), 422)
        # The key is scoped to the workspace.
    with client(env.api, env.tokens.workspace("globex")) as g:
        other = g.post("/v1/workspaces/globex/subscriptions", json=body, headers=key)
        assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


def test_limit_reached_is_409(env: Env) -> None:
    url = env.url("lim")
    with client(env.api, env.tokens.workspace("acme")) as c:
        for _ in range(3):
            _create(c, "acme", url, events=["*"])
        problem = _problem(
            c.post("/v1/workspaces/acme/subscriptions", json={"url": url, "events": ["*"]}), 409
        )
        assert "3 endpoints" in problem["detail"]


def test_merge_patch(env: Env) -> None:
    with client(env.api, env.tokens.workspace("acme")) as c:
        sub = _create(
            c,
            "acme",
            env.url("p"),
            events=["contact.*"],
            entity="contact",
            headers={"X-A": "1", "X-B": "2"},
            description="d",
        )
        path = f"/v1/workspaces/acme/subscriptions/{sub['id']}"
        changed = c.patch(
            path, json={"name": "renamed", "entity": None, "headers": {"X-C": "3"}}
        ).json()
        assert changed["name"] == "renamed" and changed["entity"] is None
        assert changed["headers"] == ["X-C"] and changed["description"] == "d"
        assert changed["events"] == ["contact.*"]
        _problem(c.patch(path, json={"url": None}), 422)
        _problem(c.patch(path, json={"events": ["no.such_type"]}), 422)
        assert c.get(path).json()["name"] == "renamed"
        loose = c.patch(path, json={"ordering": "none", "max_in_flight": 5}).json()
        assert (loose["ordering"], loose["max_in_flight"]) == ("none", 5)
        fifo = c.patch(path, json={"ordering": "endpoint"}).json()
        assert (fifo["ordering"], fifo["max_in_flight"]) == ("endpoint", 1)
        _problem(c.patch(path, json={"ordering": None}), 422)


def test_status_changes_by_workspace_and_operator(env: Env) -> None:
    with (
        client(env.api, env.tokens.workspace("acme")) as c,
        client(env.api, env.tokens.admin()) as admin,
    ):
        sub = _create(c, "acme", env.url("s"), events=["*"])
        path = f"/v1/workspaces/acme/subscriptions/{sub['id']}"
        disabled = c.post(f"{path}/disable").json()
        assert disabled["status"] == "DISABLED" and disabled["status_reason"]
        assert c.post(f"{path}/enable").json()["status"] == "ACTIVE"
        assert admin.post(f"{path}/disable").json()["status"] == "BLOCKED"
        _problem(c.post(f"{path}/enable"), 409)  # a workspace cannot lift an operator's block
        _problem(c.post(f"{path}/disable"), 409)
        assert admin.post(f"{path}/enable").json()["status"] == "ACTIVE"
        assert c.delete(path).status_code == 204
        _problem(c.get(path), 404)


def test_roll_secret_and_test_fire(env: Env) -> None:
    body = "x" * 800
    url = env.url("t", lambda n, b: Reply(status=200, body=body.encode()))
    with client(env.api, env.tokens.workspace("acme")) as c:
        sub = _create(c, "acme", url, events=["deal.*"])
        path = f"/v1/workspaces/acme/subscriptions/{sub['id']}"
        rolled = c.post(f"{path}/roll-secret", json={"grace": "1h"}).json()
        new = rolled["secret"]
        assert new.startswith("whsec_") and new != sub["secret"]
        assert new not in c.get(path).text
        _problem(c.post(f"{path}/roll-secret", json={"grace": "soon"}), 422)
        result = c.post(f"{path}/test", json={"event_type": "deal.stage_changed"}).json()
        assert result["status"] == 200 and result["latency_ms"] > 0 and result["error"] is None
        assert result["body"] == "x" * 500 and result["event"] == "deal.stage_changed"
        sent = env.receiver.received("t")[-1]
        # Both secrets sign during the grace period.
        Webhook(new).verify(sent.body, sent.headers)
        Webhook(sub["secret"]).verify(sent.body, sent.headers)
        assert sent.json["event"] == "deal.stage_changed" and sent.json["workspace"] == "acme"
        assert sent.json["id"].startswith("evt_test_")
        _problem(c.post(f"{path}/test", json={"event_type": "contact.created"}), 422)
        _problem(c.post(f"{path}/test", json={"event_type": "nope.nope"}), 422)


def test_event_types(env: Env) -> None:
    with client(env.api, env.tokens.workspace("acme")) as c:
        listing = c.get("/v1/event-types").json()["data"]
        names = {t["name"] for t in listing}
        assert {"contact.created", "deal.stage_changed"} <= names
        assert all(t["schema"] and t["example"]["event"] == t["name"] for t in listing)
        contacts = c.get("/v1/event-types", params={"category": "contact"}).json()["data"]
        assert contacts and all(t["category"] == "contact" for t in contacts)
        _problem(c.get("/v1/event-types", params={"category": "nope"}), 422)
