"""``test-fire ID``: send a realistic, signed sample event straight from the CLI and show
what the endpoint answered (HARi "Test fire", Huntress "Send Test")."""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from worker import __version__
from worker.cli.common import CommandError, emit, printable, settings_from
from worker.cli.subs import get_subscription
from worker.dispatch.delivery import RESERVED_HEADERS
from worker.model import Event
from worker.outbound.client import TransportError, post_once
from worker.outbound.destinations import DestinationPolicy
from worker.outbound.signing import decode_secret, sign_headers
from worker.outbound.tls import client_ssl_context
from worker.subscriptions.challenge import ChallengeFailed, check_destination
from worker.subscriptions.model import Subscription
from worker.subscriptions.render import render_body

__all__ = ["register", "sample_event"]

EXCERPT = 500


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    fire = commands.add_parser("test-fire", parents=[common], help="send a signed sample event")
    fire.add_argument("id")
    fire.add_argument("--full", action="store_true", help="the whole response body")
    fire.set_defaults(handler=_fire)


def _concrete(pattern: str) -> str:
    if pattern == "*":
        return "record.created"
    if pattern.endswith(".*"):
        return pattern[:-1] + "created"
    if pattern.endswith(".saved"):
        return pattern[: -len("saved")] + "updated"
    return pattern


def sample_event(sub: Subscription) -> Event:
    kind = _concrete(sub.events[0] if sub.events else "*")
    entity = sub.entity or kind.split(".", 1)[0]
    data: dict[str, Any] = {
        "id": f"evt_test_{uuid.uuid4().hex[:16]}",
        "event": kind,
        "entity": entity,
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
    return Event(
        data["id"], kind, sub.workspace, entity, int(time.time() * 1000), data, "test-fire"
    )


def _fire(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    sub = get_subscription(settings, args.id)
    destinations = DestinationPolicy.from_settings(settings)
    try:
        check_destination(sub.url, destinations)
    except ChallengeFailed as exc:
        raise CommandError(str(exc).replace("challenge", "test-fire", 1)) from None
    event = sample_event(sub)
    body = render_body(event, sub)
    delivery_id = f"msg_test_{uuid.uuid4().hex[:20]}"
    now = int(time.time())
    headers = {k: v for k, v in sub.headers if k.lower() not in RESERVED_HEADERS}
    headers["content-type"] = "application/json"
    keys = [decode_secret(s) for s in sub.active_secrets(now * 1000)]
    headers.update(sign_headers(delivery_id, now, body, keys))
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
            ssl_context=client_ssl_context(settings),
            proxy=settings.egress_proxy,
        )
    except TransportError as exc:
        if exc.kind == "timeout":
            raise CommandError(f"test-fire to {sub.url}: no response within {timeout:g}s") from None
        if exc.kind == "network":
            raise CommandError(f"test-fire to {sub.url}: connection failed: {exc}") from None
        raise CommandError(f"test-fire to {sub.url}: {exc.kind}: {exc}") from None
    latency_ms = round((time.perf_counter() - start) * 1000, 1)
    text = response.body.decode("utf-8", "replace")
    shown = text if args.full else text[:EXCERPT]
    result = {
        "status": response.status,
        "latency_ms": latency_ms,
        "body": shown,
        "truncated": len(shown) < len(text),
        "webhook_id": delivery_id,
        "event": event.event,
    }
    more = (
        f"\n... ({len(text) - len(shown)} more characters; --full)" if result["truncated"] else ""
    )
    emit(
        args.output,
        result,
        f"HTTP {response.status} in {latency_ms} ms ({delivery_id})\n"
        f"{printable(shown, lines=True)}{more}",
    )
    return 0 if 200 <= response.status < 300 else 1
