"""Which log-page requests the fast path takes (the rest go to the route functions)."""

from __future__ import annotations

from typing import Any

import pytest

from worker.api.fastlog import plan

SUB = "/v1/workspaces/acme/subscriptions/sub_1"


def scope(path: str, query: str = "", method: str = "GET") -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "state": {"principal": object()},
    }


@pytest.mark.parametrize(
    ("path", "query"),
    [
        (f"{SUB}/attempts", ""),
        (f"{SUB}/attempts", "limit=500&outcome=dead_letter&since=2h&until=2026-01-01T00:00:00Z"),
        (f"{SUB}/attempts", "event_id=evt_1&cursor=abc&unknown=1"),
        (f"{SUB}/deliveries", "outcome=retry&limit=1"),
        (f"{SUB}/dead-letters", "reason=client_error"),
    ],
)
def test_plain_pages_are_taken(path: str, query: str) -> None:
    s = scope(path, query)
    assert plan(None, s) is not None  # type: ignore[arg-type]
    assert s["route"].path.startswith("/v1/workspaces/{ws}/subscriptions/{id}/")


@pytest.mark.parametrize(
    ("path", "query", "method"),
    [
        (f"{SUB}/attempts", "", "POST"),
        (f"{SUB}/attempts/x", "", "GET"),
        (f"{SUB}/deliveries/msg_1/resend", "", "POST"),
        ("/v1/workspaces/-bad/subscriptions/sub_1/attempts", "", "GET"),
        (f"/v1/workspaces/acme/subscriptions/{'x' * 101}/attempts", "", "GET"),
        (f"{SUB}/attempts", "limit=0", "GET"),
        (f"{SUB}/attempts", "limit=501", "GET"),
        (f"{SUB}/attempts", "limit=ten", "GET"),
        (f"{SUB}/attempts", "limit=5&limit=6", "GET"),
        (f"{SUB}/attempts", "outcome=failed", "GET"),
        (f"{SUB}/attempts", "since=yesterday", "GET"),
        (f"{SUB}/attempts", "until=2026-01-01T00:00:00", "GET"),  # no offset
        (f"{SUB}/attempts", "cursor=" + "c" * 501, "GET"),
        (f"{SUB}/deliveries", "reason=" + "r" * 41 + "&outcome=nope", "GET"),
        (f"{SUB}/dead-letters", "reason=" + "r" * 41, "GET"),
    ],
)
def test_anything_else_goes_to_the_routes(path: str, query: str, method: str) -> None:
    assert plan(None, scope(path, query, method)) is None  # type: ignore[arg-type]
