"""The subscription record: what a customer asked to receive, where, and how."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from worker.outbound.tls import ClientCertificate

__all__ = [
    "DEFAULT_MAX_IN_FLIGHT",
    "MAX_IN_FLIGHT_RANGE",
    "ORDERINGS",
    "Condition",
    "SecretEntry",
    "SigningKey",
    "Status",
    "Subscription",
]

ORDERINGS = ("key", "endpoint", "none")  # the ordering scopes
DEFAULT_MAX_IN_FLIGHT = 10  # concurrent attempts of a key or none subscription by default
MAX_IN_FLIGHT_RANGE = (1, 100)


class Status(StrEnum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"  # set by the workspace itself (API or portal); it may lift it
    BLOCKED = "BLOCKED"  # set by an operator (`subs disable`, an admin token)
    TOO_MANY_ERRORS = "TOO_MANY_ERRORS"  # set by the worker


@dataclass(frozen=True, slots=True)
class Condition:
    """A filter on the event payload: ``path`` is dotted (``changes.stage.new``).

    ``op`` is ``eq`` (value equals ``values[0]``), ``in`` (value is one of ``values``) or
    ``exists``. Values compare as strings of the JSON scalar (``true``, ``42``, ``closed_won``).
    """

    path: str
    op: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SecretEntry:
    """A signing secret ``whsec_...`` (plaintext in memory; encrypted at rest when a key is
    configured). ``expires_ms`` is set on the old secret during a rotation's grace period."""

    secret: str = field(repr=False)
    expires_ms: int | None = None


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An ed25519 key pair for Standard Webhooks ``v1a`` signatures: ``private_key`` is the
    32-byte seed in base64 (encrypted at rest when a key is configured), ``public_key`` is
    ``whpk_<base64>``. ``expires_ms`` is set on the old key during a rotation's grace period."""

    private_key: str = field(repr=False)
    public_key: str
    expires_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    workspace: str
    url: str
    events: tuple[str, ...]
    secrets: tuple[SecretEntry, ...] = field(repr=False)
    name: str = ""
    description: str = ""
    entity: str | None = None
    conditions: tuple[Condition, ...] = ()
    fields: tuple[str, ...] = ()  # record fields to keep; empty = all
    headers: tuple[tuple[str, str], ...] = ()
    timeout_ms: int = 15_000
    rate_limit: float | None = None  # deliveries per second; None = unlimited
    ordered: bool = True
    status: Status = Status.ACTIVE
    created_ms: int = 0
    updated_ms: int = 0
    status_reason: str | None = None
    changed_by: str | None = None  # an API token id, or "cli"
    signing_keys: tuple[SigningKey, ...] = field(default=(), repr=False)
    # A client certificate (PEM chain) presented to the receiver, with its private key (PEM;
    # encrypted at rest when a key is configured); None: the global one, if any.
    client_cert: str | None = None
    client_key: str | None = field(default=None, repr=False)

    def client_certificate(self) -> ClientCertificate | None:
        """The client certificate its requests present (None: the global one, if any)."""
        if self.client_cert is None or self.client_key is None:
            return None
        return ClientCertificate(self.client_cert, self.client_key)

    # key | endpoint | none; None (stored before scopes existed): endpoint if ordered, else none
    ordering: str | None = None
    max_in_flight: int | None = None  # None: the default in the key scope, no cap in none

    @property
    def scope(self) -> str:
        """The ordering scope: ``key``, ``endpoint`` or ``none``."""
        return self.ordering or ("endpoint" if self.ordered else "none")

    @property
    def in_flight_cap(self) -> int | None:
        """How many HTTP attempts may be in progress at once (None: no cap of its own)."""
        scope = self.scope
        if scope == "endpoint":
            return 1
        if scope == "key":
            return self.max_in_flight or DEFAULT_MAX_IN_FLIGHT
        return self.max_in_flight

    def active_secrets(self, now_ms: int) -> list[str]:
        """Secrets that sign a request sent at ``now_ms`` (newest first)."""
        return [s.secret for s in self.secrets if s.expires_ms is None or s.expires_ms > now_ms]

    def active_signing_keys(self, now_ms: int) -> list[str]:
        """Private seeds of the ed25519 keys that sign at ``now_ms`` (newest first)."""
        return [
            k.private_key
            for k in self.signing_keys
            if k.expires_ms is None or k.expires_ms > now_ms
        ]
