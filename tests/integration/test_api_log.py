"""The delivery log through the management API, against the real worker and receivers:
attempts with status, outcome, latency and the response body cut at 500 characters; one row
per delivery; dead letters; re-send of a failed delivery and redrive, each arriving again
with the same webhook-id."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support.api import api_settings, api_with_worker, client, running_api, token_maker
from tests.support.kafka import produce_json
from tests.support.receiver import Reply
from worker.config import Settings


def _wait(
    fetch: Callable[[], list[dict[str, Any]]], count: int, timeout: float = 30
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    rows = fetch()
    while len(rows) < count:
        assert time.monotonic() < deadline, f"only {len(rows)} of {count} rows: {rows}"
        time.sleep(0.2)
        rows = fetch()
    return rows


def _event(i: int, kind: str = "contact.created") -> dict[str, Any]:
    return {
        "id": f"evt_{i}",
        "event": kind,
        "entity": "contact",
        "workspace": "acme",
        "record": {"id": f"c{i}", "name": "Jane"},
    }


def test_attempts_deliveries_dead_letters_resend_and_redrive(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = api_settings(settings_factory(retry_delays="200ms"), str(tmp_path / "api"))
    long_body = ("é" * 300 + "z" * 400).encode()

    def flaky(n: int, body: bytes) -> Reply:  # n=1 is the challenge
        return Reply(status=503 if n == 2 else 200, body=long_body)

    refusing = {"on": True}

    def gone(n: int, body: bytes) -> Reply:
        return Reply(status=400 if refusing["on"] and n > 1 else 200, body=b"bad request")

    with api_with_worker(settings) as (receiver, _tokens, _api, c):
        ok_url = receiver.endpoint("ok", "whsec_" + "A" * 32, flaky)
        bad_url = receiver.endpoint("bad", "whsec_" + "A" * 32, gone)
        base = "/v1/workspaces/acme/subscriptions"
        ok = c.post(base, json={"url": ok_url, "events": ["contact.created"]}).json()
        bad = c.post(base, json={"url": bad_url, "events": ["contact.updated"]}).json()
        receiver.rekey("ok", ok["secret"])
        receiver.rekey("bad", bad["secret"])
        produce_json(settings.bootstrap_servers or "", settings.input_topics, [_event(1)], key="c1")
        produce_json(
            settings.bootstrap_servers or "",
            settings.input_topics,
            [_event(2, "contact.updated")],
            key="c2",
        )

        def attempts(sub: dict[str, Any], **params: Any) -> list[dict[str, Any]]:
            response = c.get(f"{base}/{sub['id']}/attempts", params=params)
            assert response.status_code == 200, response.text
            rows: list[dict[str, Any]] = response.json()["data"]
            return rows

        rows = _wait(lambda: attempts(ok), 2)
        newest, first = rows  # newest first
        assert (first["attempt"], first["status"], first["outcome"]) == (1, 503, "retry")
        assert (newest["attempt"], newest["status"], newest["outcome"]) == (2, 200, "success")
        assert newest["webhook_id"] == first["webhook_id"] and newest["event_id"] == "evt_1"
        assert newest["event"] == "contact.created" and newest["latency_ms"] > 0
        assert newest["response_body"] == long_body.decode()[:500]
        assert newest["started_at"].endswith("Z") and newest["error"] is None
        assert [r["outcome"] for r in attempts(ok, outcome="retry")] == ["retry"]
        assert attempts(ok, event_id="evt_none") == []
        page = c.get(f"{base}/{ok['id']}/attempts", params={"limit": 1}).json()
        second = c.get(
            f"{base}/{ok['id']}/attempts", params={"limit": 1, "cursor": page["next_cursor"]}
        ).json()
        assert [r["attempt"] for r in page["data"] + second["data"]] == [2, 1]
        deliveries = c.get(f"{base}/{ok['id']}/deliveries").json()["data"]
        assert len(deliveries) == 1
        assert deliveries[0]["attempts"] == 2 and deliveries[0]["outcome"] == "success"
        assert deliveries[0]["last_status"] == 200

        # A 400 is dead-lettered at once.
        failed = _wait(lambda: attempts(bad), 1)[0]
        assert (failed["status"], failed["outcome"]) == (400, "dead_letter")
        letters = _wait(lambda: c.get(f"{base}/{bad['id']}/dead-letters").json()["data"], 1)
        assert letters[0]["reason"] == "client_error" and letters[0]["redriven_by"] is None
        assert letters[0]["webhook_id"] == failed["webhook_id"]

        # Re-send: the same webhook-id arrives again, now answered 200.
        refusing["on"] = False
        assert (
            c.post(f"{base}/{bad['id']}/deliveries/{failed['webhook_id']}/resend").status_code
            == 202
        )
        again = receiver.wait_for_success("bad", 1, 30)
        assert again[-1].headers["webhook-id"] == failed["webhook_id"] and again[-1].verified

        # The re-send marked the dead letter: a redrive leaves it out unless forced.
        marked = _wait(
            lambda: [
                row
                for row in c.get(f"{base}/{bad['id']}/dead-letters").json()["data"]
                if row["redriven_by"]
            ],
            1,
        )
        assert marked[0]["redriven_by"].startswith("rd_")
        dry = c.post(f"{base}/{bad['id']}/dead-letters/redrive", json={"dry_run": True}).json()
        assert dry == {
            "matched": 1,
            "sent": 0,
            "already_redriven": 1,
            "skipped": 0,
            "dry_run": True,
        }
        repeat = c.post(f"{base}/{bad['id']}/dead-letters/redrive", json={}).json()
        assert repeat["sent"] == 0 and repeat["already_redriven"] == 1
        count = len(receiver.received("bad"))
        time.sleep(1)
        assert len(receiver.received("bad")) == count  # not sent a third time
        done = c.post(f"{base}/{bad['id']}/dead-letters/redrive", json={"force": True}).json()
        assert done["sent"] == 1
        receiver.wait_for_success("bad", 2, 30)

        # The re-sent delivery's attempts are numbered on: 1 (the 400), then 2 and 3.
        numbers = _wait(
            lambda: [
                a["attempt"] for a in attempts(bad) if a["webhook_id"] == failed["webhook_id"]
            ],
            3,
        )
        assert sorted(numbers) == [1, 2, 3]

        # A delivery that succeeded is re-sent from its attempt record, same webhook-id.
        before = len(receiver.received("ok"))
        assert (
            c.post(f"{base}/{ok['id']}/deliveries/{newest['webhook_id']}/resend").status_code == 202
        )
        resent = receiver.wait_for("ok", before + 1, 30)[-1]
        assert resent.headers["webhook-id"] == newest["webhook_id"] and resent.verified
        assert resent.json["id"] == "evt_1"
        unknown = c.post(f"{base}/{ok['id']}/deliveries/msg_nothing/resend")
        assert unknown.status_code == 404

        # Plain log pages are answered by worker.api.fastlog and the rest by the route
        # functions (a repeated parameter declines the fast path): both answer alike.
        for path, query in [
            (f"{base}/{ok['id']}/attempts", "limit=1"),
            (f"{base}/{ok['id']}/attempts", "outcome=retry&event_id=evt_1"),
            (f"{base}/{ok['id']}/attempts", "limit=1&cursor=" + page["next_cursor"]),
            (f"{base}/{ok['id']}/attempts", "limit=1&cursor=forged"),
            (f"{base}/{ok['id']}/deliveries", "limit=5&outcome=success"),
            (f"{base}/{bad['id']}/dead-letters", "reason=client_error&since=1h"),
            (f"{base}/sub_unknown/attempts", "limit=5"),
            (f"/v1/workspaces/other/subscriptions/{ok['id']}/attempts", "limit=5"),
        ]:
            fast = c.get(f"{path}?{query}")
            routed = c.get(f"{path}?{query}&{query.split('&')[0]}")
            assert fast.status_code == routed.status_code, (path, query, fast.text, routed.text)
            assert fast.headers["content-type"] == routed.headers["content-type"]
            assert fast.json() == routed.json(), (path, query)
            assert fast.status_code in (200, 404, 422)


def test_readyz_waits_for_the_index_and_metrics_show_requests(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = api_settings(settings_factory(), str(tmp_path / "api"))
    with token_maker(settings) as tokens, running_api(settings) as api:
        assert httpx.get(f"{api.url}/readyz").status_code == 200
        with client(api, tokens.workspace("acme")) as c:
            c.get("/v1/workspaces/acme/subscriptions")
            c.get("/v1/workspaces/other/subscriptions")
        text = httpx.get(f"{api.url}/metrics").text
        assert (
            'webhook_api_requests_total{method="GET",route="/v1/workspaces/{ws}/subscriptions",'
            'status_class="2xx"}' in text
        )
        assert 'status_class="4xx"' in text and "webhook_api_index_lag_records 0.0" in text
