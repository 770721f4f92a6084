"""Turning command-line options into subscription fields, with one-line errors."""

from __future__ import annotations

from dataclasses import dataclass, replace

from worker.config import ConfigError, parse_duration
from worker.outbound.headers import InvalidHeader, validate_header
from worker.subscriptions.conditions import parse_condition
from worker.subscriptions.model import Subscription
from worker.subscriptions.store import InvalidSubscription

__all__ = ["Changes", "apply_changes", "parse_header"]

MAX_TIMEOUT_MS = 30_000


@dataclass(frozen=True, slots=True)
class Changes:
    """What a create or update asks for; None leaves a field as it is."""

    url: str | None = None
    events: str | None = None  # comma-separated patterns
    entity: str | None = None  # "" clears it
    name: str | None = None
    description: str | None = None
    filters: list[str] | None = None
    fields: str | None = None  # comma-separated; "" clears
    headers: list[str] | None = None  # "Name: value"
    timeout: str | None = None  # a duration, at most 30s
    rate_limit: float | None = None  # per second; 0 clears
    ordered: bool | None = None


def parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or any(c in name for c in " \t\r\n"):
        raise InvalidSubscription(f"malformed header {text!r}: use 'Name: value'")
    name, value = name.strip(), value.strip(" \t")
    try:
        validate_header(name, value)
    except InvalidHeader as exc:
        raise InvalidSubscription(str(exc)) from None
    return name, value


def apply_changes(sub: Subscription, changes: Changes) -> Subscription:
    """``sub`` with ``changes`` applied; raises InvalidSubscription for malformed values."""
    plain = {
        "url": changes.url,
        "name": changes.name,
        "description": changes.description,
        "ordered": changes.ordered,
    }
    updates: dict[str, object] = {k: v for k, v in plain.items() if v is not None}
    if changes.events is not None:
        updates["events"] = _split(changes.events)
    if changes.entity is not None:
        updates["entity"] = changes.entity or None
    if changes.fields is not None:
        updates["fields"] = _split(changes.fields)
    if changes.headers is not None:
        updates["headers"] = tuple(parse_header(h) for h in changes.headers)
    if changes.timeout is not None:
        updates["timeout_ms"] = _timeout(changes.timeout)
    if changes.filters is not None:
        try:
            updates["conditions"] = tuple(parse_condition(f) for f in changes.filters)
        except ValueError as exc:
            raise InvalidSubscription(str(exc)) from None
    if changes.rate_limit is not None:
        if changes.rate_limit < 0:
            raise InvalidSubscription("--rate-limit must be positive (deliveries per second)")
        updates["rate_limit"] = changes.rate_limit or None
    return replace(sub, **updates)  # type: ignore[arg-type]


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _timeout(text: str) -> int:
    try:
        timeout = parse_duration(text)
    except ConfigError as exc:
        raise InvalidSubscription(f"--timeout: {exc}") from None
    if not 0 < timeout <= MAX_TIMEOUT_MS:
        raise InvalidSubscription("--timeout must be more than 0 and at most 30s")
    return timeout
