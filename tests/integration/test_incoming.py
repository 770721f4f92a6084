"""Incoming webhooks against the dev broker and the real API: sources through the API and
the CLI, verification by the reference Standard Webhooks library, nothing written on a
refusal, repeats acknowledged once, the body cap and the per-source rate limit."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.admin import ConfigResource, ResourceType

from tests.support.api import ThreadApi, Tokens, api_settings, client, running_api, token_maker
from tests.support.cli import cli_error, cli_json
from tests.support.incoming import hex_signature, landed, post, raw_body, signed_headers
from worker.config import Settings
from worker.kafka.clients import make_admin
from worker.kafka.topics import Topics
from worker.sources.landing import record_bytes_limit

PROBLEM = "application/problem+json"


@dataclass
class Env:
    api: ThreadApi
    tokens: Tokens
    settings: Settings

    def source(self, ws: str, topic: str, verify: str = "standard-webhooks") -> dict[str, Any]:
        with client(self.api, self.tokens.workspace(ws)) as c:
            response = c.post(
                f"/v1/workspaces/{ws}/sources",
                json={"name": f"{verify} in", "topic": topic, "verify": verify},
            )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created


def _env(settings: Settings, tmp_path: Path) -> Iterator[Env]:
    with token_maker(settings) as tokens, running_api(settings) as api:
        yield Env(api, tokens, settings)


@pytest.fixture
def env(settings_factory: Callable[..., Settings], tmp_path: Path) -> Iterator[Env]:
    yield from _env(api_settings(settings_factory(), str(tmp_path / "api")), tmp_path)


def _topic(settings: Settings, name: str) -> str:
    return f"in-{settings.topic_prefix}{name}"


def test_sources_through_the_api_are_workspace_scoped(env: Env) -> None:
    topic = _topic(env.settings, "crm")
    created = env.source("acme", topic)
    assert created["id"].startswith("src_") and len(created["id"]) == 30
    assert created["secret"].startswith("whsec_")
    assert created["path"] == f"/in/{created['id']}"
    assert (created["workspace"], created["topic"], created["verify"]) == (
        "acme",
        topic,
        "standard-webhooks",
    )
    base = f"/v1/workspaces/acme/sources/{created['id']}"
    with client(env.api, env.tokens.workspace("acme")) as acme:
        shown = acme.get(base).json()
        assert "secret" not in shown or shown["secret"] is None
        assert [s["id"] for s in acme.get("/v1/workspaces/acme/sources").json()["data"]] == [
            created["id"]
        ]
        rolled = acme.post(f"{base}/roll-secret", json={"grace": "1h"}).json()
        assert rolled["secret"].startswith("whsec_") and rolled["secret"] != created["secret"]
        assert rolled["old_secret_expires_at"] is not None
        for bad_topic in (f"{env.settings.topic_prefix}dlq", env.settings.input_topics, "a b"):
            response = acme.post(
                "/v1/workspaces/acme/sources", json={"name": "x", "topic": bad_topic}
            )
            assert response.status_code == 422, bad_topic
            assert response.headers["content-type"] == PROBLEM
    with client(env.api, env.tokens.workspace("globex")) as globex:
        # Another workspace's source answers exactly like a missing one, on every route.
        assert globex.get(f"/v1/workspaces/acme/sources/{created['id']}").status_code == 404
        other = f"/v1/workspaces/globex/sources/{created['id']}"
        assert globex.get(other).status_code == 404
        assert globex.delete(other).status_code == 404
        assert globex.post(f"{other}/roll-secret").status_code == 404
        assert globex.get("/v1/workspaces/globex/sources").json()["data"] == []
    with client(env.api, None) as anonymous:
        assert anonymous.get("/v1/workspaces/acme/sources").status_code == 401
    with client(env.api, env.tokens.workspace("acme")) as acme:
        assert acme.delete(base).status_code == 204
        assert acme.get(base).status_code == 404
    body = b'{"after": "delete"}'
    response = post(env.api.url, created["path"], body, signed_headers(rolled["secret"], body))
    assert response.status_code == 404


def test_verified_requests_land_once_and_refused_ones_write_nothing(env: Env) -> None:
    topic = _topic(env.settings, "std")
    source = env.source("acme", topic)
    secret, path = source["secret"], source["path"]
    body = b'{"type": "contact.created", "data": {"id": 7, "name": "J\xc3\xa4ne"}}'
    headers = signed_headers(secret, body)
    headers["authorization"] = "Bearer keep-out"
    headers["cookie"] = "session=secret"
    headers["x-sender"] = "crm"
    first = post(env.api.url, path, body, headers)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "received": True,
        "webhook_id": headers["webhook-id"],
        "duplicate": False,
    }
    # The same webhook-id again (a sender's retry, re-signed with a new timestamp).
    again = post(
        env.api.url, path, body, signed_headers(secret, body, webhook_id=headers["webhook-id"])
    )
    assert again.status_code == 200 and again.json()["duplicate"] is True

    binary = bytes(range(256))
    assert post(env.api.url, path, binary, signed_headers(secret, binary)).status_code == 200

    wrong = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
    forged = signed_headers(secret, body)
    forged["webhook-signature"] = "v1," + "A" * 44
    tampered = signed_headers(secret, body)
    refusals = {
        "forged": (body, forged),
        "unsigned": (body, {"content-type": "application/json"}),
        "stale": (body, signed_headers(secret, body, age_s=6 * 60)),
        "future": (body, signed_headers(secret, body, age_s=-6 * 60)),
        "wrong secret": (body, signed_headers(wrong, body)),
        "tampered body": (body + b" ", tampered),
        "v1a only": (body, {**forged, "webhook-signature": "v1a," + "A" * 88}),
    }
    for name, (sent, sent_headers) in refusals.items():
        response = post(env.api.url, path, sent, sent_headers)
        assert response.status_code == 401, name
        assert response.headers["content-type"] == PROBLEM
    records = landed(env.settings.bootstrap_servers or "", topic)
    assert len(records) == 2, records
    text, raw = records
    assert text["_key"] == source["id"] and text["source"] == source["id"]
    assert text["workspace"] == "acme" and text["webhook_id"] == headers["webhook-id"]
    assert text["body_encoding"] == "utf8" and raw_body(text) == body
    assert text["received_at"].endswith("Z")
    assert text["headers"]["x-sender"] == "crm"
    assert text["headers"]["webhook-signature"] == headers["webhook-signature"]
    assert "authorization" not in text["headers"] and "cookie" not in text["headers"]
    assert raw["body_encoding"] == "base64" and raw_body(raw) == binary
    metrics = httpx.get(env.api.url + "/metrics").text
    assert 'webhook_incoming_requests_total{outcome="accepted"} 2.0' in metrics
    assert 'webhook_incoming_requests_total{outcome="duplicate"} 1.0' in metrics
    assert f'webhook_incoming_requests_total{{outcome="refused"}} {len(refusals)}.0' in metrics


def test_hmac_and_unverified_sources(env: Env) -> None:
    hmac_topic, open_topic = _topic(env.settings, "hmac"), _topic(env.settings, "open")
    hmac_source = env.source("acme", hmac_topic, "hmac-sha256")
    open_source = env.source("acme", open_topic, "none")
    body = b"plain=text&n=1"
    good = {"x-webhook-signature": hex_signature(hmac_source["secret"], body)}
    assert post(env.api.url, hmac_source["path"], body, good).status_code == 200
    bad = {"x-webhook-signature": hex_signature(open_source["secret"], body)}
    assert post(env.api.url, hmac_source["path"], body, bad).status_code == 401
    assert post(env.api.url, hmac_source["path"], body, {}).status_code == 401
    assert post(env.api.url, open_source["path"], body, {}).status_code == 200
    for topic in (hmac_topic, open_topic):
        (record,) = landed(env.settings.bootstrap_servers or "", topic)
        assert raw_body(record) == body and record["webhook_id"] is None
    # An unsigned webhook-id is kept but never deduplicated (it could suppress other messages).
    for _ in range(2):
        response = post(env.api.url, open_source["path"], body, {"webhook-id": "msg_same"})
        assert response.json()["duplicate"] is False
    assert [r["webhook_id"] for r in landed(env.settings.bootstrap_servers or "", open_topic)] == [
        None,
        "msg_same",
        "msg_same",
    ]


def test_oversized_bodies_get_413_and_sources_are_rate_limited(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = api_settings(
        settings_factory(max_event_bytes=4096, incoming_rate_limit=2), str(tmp_path / "api")
    )
    for env in _env(settings, tmp_path):
        topic = _topic(settings, "small")
        source = env.source("acme", topic)
        big = b"x" * 4097
        response = post(env.api.url, source["path"], big, signed_headers(source["secret"], big))
        assert response.status_code == 413 and response.headers["content-type"] == PROBLEM

        def chunks() -> Iterator[bytes]:
            for _ in range(5):
                yield b"y" * 1000

        chunked = httpx.post(
            env.api.url + source["path"],
            content=chunks(),
            headers=signed_headers(source["secret"], b"y" * 5000),
        )
        assert chunked.status_code == 413
        fits = b"z" * 4096
        time.sleep(1.5)  # the bucket refills (2/s, burst 4)
        statuses = [
            post(env.api.url, source["path"], fits, signed_headers(source["secret"], fits))
            for _ in range(6)
        ]
        assert statuses[0].status_code == 200, statuses[0].text
        limited = [r for r in statuses if r.status_code == 429]
        assert limited and int(limited[0].headers["retry-after"]) >= 1
        accepted = sum(r.status_code == 200 for r in statuses)
        assert len(landed(settings.bootstrap_servers or "", topic)) == accepted
        metrics = httpx.get(env.api.url + "/metrics").text
        assert 'webhook_incoming_requests_total{outcome="too_large"} 2.0' in metrics
        assert 'webhook_incoming_requests_total{outcome="rate_limited"}' in metrics


def test_sources_on_the_command_line(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    topic = _topic(settings, "cli")
    created = cli_json(
        settings, "sources", "create", "--workspace", "acme", "--name", "CRM", "--topic", topic
    )
    assert {"id", "secret", "path"} <= created.keys()
    # The topic was created to hold the largest record a body under the cap can make.
    resource = ConfigResource(ResourceType.TOPIC, topic)
    admin = make_admin(settings)
    described = admin.describe_configs([resource])[resource].result(10)
    limit = record_bytes_limit(settings.max_event_bytes)
    assert int(described["max.message.bytes"].value) > limit > settings.max_event_bytes * 4 // 3
    assert created["path"] == f"/in/{created['id']}" and created["verify"] == "standard-webhooks"
    listed = cli_json(settings, "sources", "list", "--workspace", "acme")
    assert [s["id"] for s in listed] == [created["id"]] and "secret" not in listed[0]
    shown = cli_json(settings, "sources", "show", created["id"])
    assert shown["topic"] == topic and "secret" not in shown
    rolled = cli_json(settings, "sources", "roll-secret", created["id"], "--grace", "0s")
    assert rolled["secret"] != created["secret"] and rolled["old_secret_expires_at"] is None
    own = Topics.from_settings(settings).attempts
    assert "own topics" in cli_error(
        settings, "sources", "create", "--workspace", "a", "--name", "n", "--topic", own
    )
    assert "input topic" in cli_error(
        settings,
        "sources",
        "create",
        "--workspace",
        "a",
        "--name",
        "n",
        "--topic",
        settings.input_topics,
    )
    assert "verify" in cli_error(
        settings,
        "sources",
        "create",
        "--workspace",
        "a",
        "--name",
        "n",
        "--topic",
        "t",
        "--verify",
        "md5",
    )
    cli_json(settings, "sources", "delete", created["id"])
    assert "unknown source" in cli_error(settings, "sources", "show", created["id"])


def test_two_replicas_racing_on_one_webhook_id_write_one_record(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = api_settings(settings_factory(), str(tmp_path / "a"))
    with token_maker(settings) as tokens, running_api(settings) as first:
        other = api_settings(settings, str(tmp_path / "b"))
        with running_api(other) as second:
            env = Env(first, tokens, settings)
            topic = _topic(settings, "race")
            source = env.source("acme", topic)
            body = b'{"race": true}'
            ids = [f"msg_race_{i}" for i in range(20)]

            def send(replica: ThreadApi, webhook_id: str) -> httpx.Response:
                headers = signed_headers(source["secret"], body, webhook_id=webhook_id)
                return post(replica.url, source["path"], body, headers)

            with ThreadPoolExecutor(8) as pool:
                answers = list(
                    pool.map(
                        lambda job: send(*job),
                        [(api, i) for i in ids for api in (first, second)],
                    )
                )
    assert {a.status_code for a in answers} == {200}, [a.text for a in answers]
    assert sum(not a.json()["duplicate"] for a in answers) == len(ids)
    records = landed(settings.bootstrap_servers or "", topic)
    assert sorted(r["webhook_id"] for r in records) == sorted(ids)
