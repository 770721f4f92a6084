"""The delivery log's depth through the management API, against the real worker, API and a
real receiver: one delivery in full (the request as sent with its signature, the response's
headers, body and size, the next retry time), endpoint health and activity per hour, and
Send test with an edited event, recorded in the log as a test. Another workspace sees 404."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook

from tests.support.api import api_settings, api_with_worker, client
from tests.support.kafka import produce_json
from tests.support.receiver import Reply
from worker.config import Settings


def _until(fetch: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_delivery_detail_health_activity_and_a_recorded_test(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = api_settings(settings_factory(retry_delays="300ms,60s"), str(tmp_path / "api"))
    answers = {"status": 503}

    def reply(n: int, body: bytes) -> Reply:
        if b'"challenge"' in body:
            return Reply(200)
        return Reply(answers["status"], headers={"x-receiver": "r1"}, body=b"busy " * 300)

    with (
        api_with_worker(settings) as (receiver, tokens, api, c),
        client(api, tokens.workspace("globex")) as other,
    ):
        url = receiver.endpoint("r", "whsec_" + "A" * 32, reply)
        base = "/v1/workspaces/acme/subscriptions"
        created = c.post(
            base,
            json={"url": url, "events": ["contact.*"], "name": "R", "headers": {"X-Key": "s3"}},
        ).json()
        sub_id, secret = created["id"], created["secret"]
        receiver.rekey("r", secret)
        event = {
            "id": "evt_d1",
            "event": "contact.created",
            "entity": "contact",
            "workspace": "acme",
            "record": {"id": "c1"},
        }
        produce_json(settings.bootstrap_servers or "", settings.input_topics, [event], key="c1")

        def retrying() -> list[dict[str, Any]]:
            rows = c.get(f"{base}/{sub_id}/deliveries").json()["data"]
            return [r for r in rows if r["attempts"] >= 2]

        [delivery] = _until(retrying)
        detail = c.get(f"{base}/{sub_id}/deliveries/{delivery['webhook_id']}")
        assert detail.status_code == 200, detail.text
        body = detail.json()
        assert body["test"] is False and body["event_id"] == "evt_d1"
        first, second = body["attempt_details"][:2]
        assert (first["attempt"], second["attempt"]) == (1, 2)
        request = first["request"]
        # The request as sent: the signature verifies over the recorded body.
        Webhook(secret).verify(request["body"].encode(), request["headers"])
        assert request["headers"]["x-key"] == "(hidden)"  # a custom value may be a credential
        assert request["size"] == len(request["body"].encode()) and not request["truncated"]
        response = first["response"]
        assert first["status"] == 503 and response["headers"]["x-receiver"] == "r1"
        assert response["size"] == len(b"busy " * 300) and response["truncated"]
        assert len(response["body"]) < response["size"]
        assert first["url"] == url and first["latency_ms"] > 0
        assert second["next_attempt_at"] is not None  # waits 60 s before the third
        assert (
            other.get(f"/v1/workspaces/acme/subscriptions/{sub_id}/deliveries/x").status_code == 404
        )
        assert c.get(f"{base}/{sub_id}/deliveries/msg_nothing").status_code == 404

        health = c.get(f"{base}/{sub_id}/health").json()
        assert health["consecutive_failures"] >= 2 and health["last_status"] == 503
        assert health["success_rate_24h"] == 0.0 and health["failures_24h"] >= 2
        activity = c.get(f"{base}/{sub_id}/activity", params={"window": "7d"}).json()
        assert len(activity["data"]) == 168
        assert activity["data"][-1]["failures"] >= 2 and activity["data"][-1]["successes"] == 0
        assert c.get(f"{base}/{sub_id}/activity", params={"window": "1y"}).status_code == 422
        listed = c.get("/v1/workspaces/acme/subscription-health").json()["data"]
        assert [h["subscription_id"] for h in listed] == [sub_id]
        assert other.get(f"{base}/{sub_id}/health").status_code == 404

        # Send test with an edited example: recorded in the log as a test, not in the counts.
        answers["status"] = 200
        edited = {"event": "contact.updated", "workspace": "evil", "record": {"id": "t9"}}
        tested = c.post(
            f"{base}/{sub_id}/test", json={"event_type": "contact.updated", "event": edited}
        )
        assert tested.status_code == 200, tested.text
        got = receiver.received("r")[-1]
        assert got.json["record"] == {"id": "t9"} and got.json["workspace"] == "acme"
        assert got.json["test"] is True
        webhook_id = tested.json()["webhook_id"]
        shown = _until(
            lambda: [
                r
                for r in c.get(f"{base}/{sub_id}/deliveries").json()["data"]
                if r["webhook_id"] == webhook_id
            ]
        )
        assert shown[0]["outcome"] == "success"
        test_detail = c.get(f"{base}/{sub_id}/deliveries/{webhook_id}").json()
        assert test_detail["test"] is True
        assert test_detail["attempt_details"][0]["request"]["headers"]["webhook-id"] == webhook_id
        assert c.get(f"{base}/{sub_id}/health").json()["consecutive_failures"] >= 2
        assert c.post(f"{base}/{sub_id}/deliveries/{webhook_id}/resend").status_code == 409
