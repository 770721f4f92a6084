"""Send test with an edited event: the workspace is always the subscription's, the id fresh
unless given, the type one the subscription receives; the recorded attempt is a test."""

from __future__ import annotations

import pytest

from worker.subscriptions.model import Subscription
from worker.subscriptions.testfire import FireResult, NotSubscribed, attempt_of_test, sample_event

SUB = Subscription(
    "sub_1", "acme", "https://x.example/h", ("contact.*",), (), headers=(("X-Key", "s3"),)
)


def test_an_edited_event_keeps_the_subscriptions_workspace_and_gets_an_id() -> None:
    event = sample_event(SUB, None, None, {"event": "contact.updated", "workspace": "evil"})
    assert event.workspace == "acme" and event.data["workspace"] == "acme"
    assert event.event == "contact.updated" and event.data["test"] is True
    assert event.id.startswith("evt_test_")
    kept = sample_event(SUB, None, None, {"id": "evt_mine", "event": "contact.created"})
    assert kept.id == "evt_mine"


def test_an_edited_event_of_a_type_not_subscribed_to_is_refused() -> None:
    with pytest.raises(NotSubscribed):
        sample_event(SUB, None, None, {"event": "deal.created"})


def test_the_recorded_attempt_is_a_test_with_custom_header_values_hidden() -> None:
    result = FireResult(
        200,
        12.0,
        "ok",
        None,
        "msg_test_1",
        "contact.created",
        "evt_1",
        {"X-Key": "s3", "webhook-signature": "v1,abc"},
        b'{"id": "evt_1"}',
        (("content-type", "text/plain"),),
    )
    attempt = attempt_of_test(SUB, result, 10_000)
    assert attempt.test and attempt.outcome == "success" and attempt.attempt == 1
    assert attempt.request_headers["x-key"] == "(hidden)"
    assert attempt.request_headers["webhook-signature"] == "v1,abc"
    assert attempt.request_size == 15 and attempt.response_size == 2
    assert attempt.response_headers == {"content-type": "text/plain"}
