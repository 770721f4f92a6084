"""Test-fire: a realistic, signed sample event sent straight to a subscription's endpoint,
and what it answered (HARi "Send test", Huntress "Send Test"). The CLI and the API both
send through here; with a catalogue the event is the type's example."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from worker import __version__
from worker.catalogue import Catalogue
from worker.config import Settings
from worker.errors import InvalidInput
from worker.model import Attempt, Event
from worker.outbound.client import Response, TransportError, post_once
from worker.outbound.destinations import DestinationPolicy
from worker.outbound.headers import RESERVED_HEADERS
from worker.outbound.recorded import REQUEST_BODY_KEPT, recorded
from worker.outbound.signing import decode_secret, load_signing_key, sign_headers
from worker.outbound.tls import TlsContexts
from worker.subscriptions.challenge import ChallengeFailed, check_destination
from worker.subscriptions.model import Subscription
from worker.subscriptions.patterns import pattern_matches
from worker.subscriptions.render import render_body

__all__ = ["FireResult", "NotSubscribed", "as_json", "attempt_of_test", "fire", "sample_event"]

EXCERPT = 500


class NotSubscribed(InvalidInput):
    """The event type asked for is not one the subscription receives."""


@dataclass(frozen=True, slots=True)
class FireResult:
    """``status`` is None when no response came (then ``error`` says why)."""

    status: int | None
    latency_ms: float | None
    body: str  # the whole response text; callers cut it
    error: str | None
    webhook_id: str
    event: str
    event_id: str = ""
    request_headers: dict[str, str] = field(default_factory=dict)
    request_body: bytes = b""
    response_headers: tuple[tuple[str, str], ...] = ()


def _concrete(pattern: str) -> str:
    if pattern == "*":
        return "record.created"
    if pattern.endswith(".*"):
        return pattern[:-1] + "created"
    if pattern.endswith(".saved"):
        return pattern[: -len("saved")] + "updated"
    return pattern


def sample_event(
    sub: Subscription,
    catalogue: Catalogue | None = None,
    event_type: str | None = None,
    given: dict[str, Any] | None = None,
) -> Event:
    """The event to send: ``given`` (an edited example: its workspace is the subscription's
    whatever it says, its id fresh unless it has one), else the catalogue's example of
    ``event_type`` (or of the first type the subscription's first pattern matches), else a
    generic record event."""
    if event_type is not None and not any(pattern_matches(p, event_type) for p in sub.events):
        raise NotSubscribed(f"the subscription does not receive {event_type} events")
    wanted = event_type or (sub.events[0] if sub.events else "*")
    if given is not None:
        data = {**given, "workspace": sub.workspace, "test": True}
        if not isinstance(data.get("id"), str) or not data["id"]:
            data["id"] = f"evt_test_{uuid.uuid4().hex[:16]}"
        kind = str(data.get("event") or event_type or _concrete(wanted))
        data["event"] = kind
        if event_type is None and not any(pattern_matches(p, kind) for p in sub.events):
            raise NotSubscribed(f"the subscription does not receive {kind} events")
    elif catalogue is not None and (event_type is None or catalogue.get(event_type) is not None):
        data = catalogue.example_event(wanted, sub.workspace, sub.entity)
        data["test"] = True
        kind = str(data["event"])
    else:
        kind = event_type or _concrete(wanted)
        data = {
            "id": f"evt_test_{uuid.uuid4().hex[:16]}",
            "event": kind,
            "entity": sub.entity or kind.split(".", 1)[0],
            "workspace": sub.workspace,
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "user": "webhook-worker test-fire",
            "test": True,
            "record": {
                "id": "rec_test",
                "name": "Jane Smith",
                "email": "jane@example.com",
                "stage": "proposal",
            },
        }
        if kind.endswith(".updated"):
            data["changes"] = {"stage": {"old": "qualification", "new": "proposal"}}
    entity = data.get("entity")
    return Event(
        str(data["id"]),
        kind,
        sub.workspace,
        entity if isinstance(entity, str) else None,
        int(time.time() * 1000),
        data,
        "test-fire",
    )


def _headers(sub: Subscription, delivery_id: str, body: bytes) -> dict[str, str]:
    now = int(time.time())
    headers = {k: v for k, v in sub.headers if k.lower() not in RESERVED_HEADERS}
    headers["content-type"] = "application/json"
    keys = [decode_secret(s) for s in sub.active_secrets(now * 1000)]
    pairs = [load_signing_key(s) for s in sub.active_signing_keys(now * 1000)]
    headers.update(sign_headers(delivery_id, now, body, keys, pairs))
    return headers


def fire(
    sub: Subscription,
    settings: Settings,
    *,
    catalogue: Catalogue | None = None,
    event_type: str | None = None,
    event: dict[str, Any] | None = None,
) -> FireResult:
    """Send one signed sample event to ``sub``'s URL (blocking; no redirects followed) on the
    delivery client: the same destination checks, proxy and TLS settings as deliveries.
    A refused destination, a connection failure or a timeout is a result with ``error``."""
    sample = sample_event(sub, catalogue, event_type, event)
    delivery_id = f"msg_test_{uuid.uuid4().hex[:20]}"
    body = render_body(sample, sub)
    destinations = DestinationPolicy.from_settings(settings)
    headers = _headers(sub, delivery_id, body)

    def failed(error: str, latency: float | None = None) -> FireResult:
        return FireResult(
            None, latency, "", error, delivery_id, sample.event, sample.id, headers, body
        )

    try:
        check_destination(sub.url, destinations)
    except ChallengeFailed as exc:
        return failed(str(exc).replace("challenge", "test-fire", 1))
    timeout = sub.timeout_ms / 1000
    start = time.perf_counter()
    try:
        response = post_once(
            sub.url,
            body,
            headers,
            timeout,
            destinations=destinations,
            user_agent=f"webhook-worker/{__version__}",
            tls=TlsContexts.from_settings(settings),
            proxy=settings.egress_proxy,
            certificate=sub.client_certificate(),
        )
    except TransportError as exc:
        if exc.kind == "timeout":
            return failed(f"no response within {timeout:g}s", round(timeout * 1000, 1))
        if exc.kind == "network":
            return failed(f"connection failed: {exc}")
        return failed(f"{exc.kind}: {exc}")
    latency_ms = round((time.perf_counter() - start) * 1000, 1)
    text = response.body.decode("utf-8", "replace")
    return FireResult(
        response.status,
        latency_ms,
        text,
        None,
        delivery_id,
        sample.event,
        sample.id,
        headers,
        body,
        response.headers,
    )


def as_json(result: FireResult, *, full: bool = False) -> dict[str, Any]:
    """The result as the CLI and the API show it (body cut at 500 characters unless full)."""
    shown = result.body if full else result.body[:EXCERPT]
    return {
        "status": result.status,
        "latency_ms": result.latency_ms,
        "body": shown,
        "truncated": len(shown) < len(result.body),
        "error": result.error,
        "webhook_id": result.webhook_id,
        "event": result.event,
    }


def attempt_of_test(sub: Subscription, result: FireResult, now_ms: int) -> Attempt:
    """The attempt record of a test, for the delivery log (``test`` set)."""
    latency = result.latency_ms or 0.0
    attempt = Attempt(
        delivery_id=result.webhook_id,
        subscription_id=sub.id,
        workspace=sub.workspace,
        event_id=result.event_id,
        event_type=result.event,
        attempt=1,
        started_ms=now_ms - int(latency),
        latency_ms=latency,
        url=sub.url,
        outcome="success"
        if result.status is not None and 200 <= result.status < 300
        else "dead_letter",
        status=result.status,
        error=result.error,
        request_body=result.request_body[:REQUEST_BODY_KEPT].decode("utf-8", "replace"),
        request_size=len(result.request_body),
        response_body=result.body[:1024],
        test=True,
    )
    fake = Response(
        result.status or 0, result.body.encode(), None, latency / 1000, result.response_headers
    )
    return recorded(
        attempt, result.request_headers, sub.headers, fake if result.status is not None else None
    )
