"""What a create or update asks for (:class:`Changes`), applied to a subscription, and the
parsers of the command line's spellings of its fields (one-line errors).

The API builds :class:`Changes` from JSON and the CLI from its flags; both then go through
:mod:`worker.subscriptions.service`, which validates the result once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Final

from worker.config import ConfigError, parse_duration
from worker.outbound.headers import InvalidHeader, validate_header
from worker.outbound.signing import generate_signing_key
from worker.subscriptions.conditions import parse_condition
from worker.subscriptions.model import Condition, SigningKey, Subscription
from worker.subscriptions.store import InvalidSubscription

__all__ = [
    "UNSET",
    "Changes",
    "Unset",
    "apply_changes",
    "new_signing_key",
    "parse_conditions",
    "parse_header",
    "parse_timeout",
    "split_list",
]

MAX_TIMEOUT_MS = 30_000


class Unset:
    """The type of :data:`UNSET`: a field the change leaves as it is (None clears)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset()


@dataclass(frozen=True, slots=True)
class Changes:
    """Fields to set; :data:`UNSET` leaves one as it is, None clears a nullable one."""

    url: str | Unset = UNSET
    events: tuple[str, ...] | Unset = UNSET
    entity: str | Unset | None = UNSET
    name: str | Unset = UNSET
    description: str | Unset = UNSET
    conditions: tuple[Condition, ...] | Unset = UNSET
    fields: tuple[str, ...] | Unset = UNSET
    headers: tuple[tuple[str, str], ...] | Unset = UNSET
    timeout_ms: int | Unset = UNSET
    rate_limit: float | Unset | None = UNSET  # per second; None or 0 = unlimited
    ordered: bool | Unset = UNSET
    # True: sign with an ed25519 key pair too (``v1a``), made when there is none; False: stop.
    asymmetric: bool | Unset = UNSET
    # A client certificate (PEM) and its private key (PEM), set together; a certificate set
    # to None removes the key with it.
    client_cert: str | Unset | None = UNSET
    client_key: str | Unset | None = UNSET
    ordering: str | Unset = UNSET  # key | endpoint | none
    max_in_flight: int | Unset | None = UNSET  # 1-100; None = the scope's default

    def given(self) -> dict[str, object]:
        """The fields this change sets, by name."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: v for k, v in values.items() if not isinstance(v, Unset)}


def apply_changes(sub: Subscription, changes: Changes) -> Subscription:
    """``sub`` with ``changes`` applied (validation is the service's job)."""
    updates = changes.given()
    if "asymmetric" in updates:
        wanted = updates.pop("asymmetric")
        updates["signing_keys"] = (sub.signing_keys or (new_signing_key(),)) if wanted else ()
    if "entity" in updates:
        updates["entity"] = updates["entity"] or None
    if "rate_limit" in updates:
        updates["rate_limit"] = updates["rate_limit"] or None
    if "client_cert" in updates and updates["client_cert"] is None:
        updates.setdefault("client_key", None)
    if "ordering" in updates:
        updates["ordered"] = updates["ordering"] != "none"
    return replace(sub, **updates)  # type: ignore[arg-type]


def new_signing_key() -> SigningKey:
    """A fresh ed25519 key pair for ``v1a`` signatures."""
    private, public = generate_signing_key()
    return SigningKey(private, public)


# -- the command line's spellings ------------------------------------------------------------


def split_list(text: str) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")``."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_header(text: str) -> tuple[str, str]:
    """``"X-Team: sales"`` -> ``("X-Team", "sales")``."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise InvalidSubscription(f"malformed header {text!r}: use 'Name: value'")
    name, value = name.strip(), value.strip(" \t")
    try:
        validate_header(name, value)
    except InvalidHeader as exc:
        raise InvalidSubscription(str(exc)) from None
    return name, value


def parse_conditions(texts: list[str]) -> tuple[Condition, ...]:
    """``--filter`` values -> conditions (see :func:`parse_condition`)."""
    try:
        return tuple(parse_condition(f) for f in texts)
    except ValueError as exc:
        raise InvalidSubscription(str(exc)) from None


def parse_timeout(text: str) -> int:
    """``"10s"`` -> 10000 (checked against the limits by the service)."""
    try:
        return parse_duration(text)
    except ConfigError as exc:
        raise InvalidSubscription(f"--timeout: {exc}") from None
