"""The subscription service: every change to a subscription, whoever asks.

The command line and the management API (and through it the portal) call the same methods,
so each rule is written once: the URL and destination policy, event patterns against the
catalogue, headers, limits, the challenge, status transitions, secret rotation. Reads come
from a :class:`SubscriptionIndex` that follows the compacted topic; writes go to the topic
(Kafka stays the only source of truth) and, once acknowledged, are applied to the index so
the caller reads its own write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from worker.catalogue import Catalogue
from worker.config import Settings
from worker.errors import ConflictError, NotFoundError
from worker.outbound.destinations import DestinationPolicy
from worker.outbound.headers import InvalidHeader
from worker.outbound.headers import validate_header as check_header
from worker.outbound.tls import (
    InvalidCertificate,
    TlsContexts,
    check_client_certificate,
)
from worker.subscriptions.challenge import ChallengeFailed, run_challenge
from worker.subscriptions.edit import Changes, apply_changes, new_signing_key
from worker.subscriptions.index import SubscriptionIndex
from worker.subscriptions.model import (
    DEFAULT_MAX_IN_FLIGHT,
    MAX_IN_FLIGHT_RANGE,
    ORDERINGS,
    SecretEntry,
    Status,
    Subscription,
)
from worker.subscriptions.secrets import generate_secret
from worker.subscriptions.store import (
    InvalidSubscription,
    SubscriptionWriter,
    new_subscription_id,
    now_ms,
)

log = logging.getLogger(__name__)

__all__ = [
    "CLI_ACTOR",
    "Actor",
    "ChallengeMemory",
    "Conflict",
    "LimitReached",
    "NotFound",
    "SubscriptionService",
]

MAX_HEADERS = 20


class NotFound(NotFoundError):
    """No such subscription, or one of another workspace (the two look the same)."""


class Conflict(ConflictError):
    """The change is not allowed in the subscription's current state."""


class LimitReached(Conflict):
    """A workspace limit would be exceeded."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks: ``id`` is recorded on the subscription (``changed_by``); an operator (the
    CLI or an admin token) may block and unblock, a workspace only disable and enable."""

    id: str
    operator: bool


CLI_ACTOR = Actor("cli", operator=True)


class ChallengeMemory(Protocol):
    """Where passed challenges are remembered, per (workspace, URL), for an hour."""

    def recent(self, workspace: str, url: str) -> bool: ...

    def remember(self, workspace: str, url: str) -> None: ...


class SubscriptionService:
    """Create, change and read subscriptions under one set of rules."""

    def __init__(
        self,
        settings: Settings,
        *,
        index: SubscriptionIndex,
        writer: SubscriptionWriter,
        catalogue: Catalogue | None,
        challenges: ChallengeMemory,
        challenge: Callable[[Subscription], object] | None = None,
        applied: Callable[[int, int], bool] | None = None,
    ) -> None:
        self._settings = settings
        self._index = index
        self._writer = writer
        self._catalogue = catalogue
        self._challenges = challenges
        self._applied = applied
        destinations = DestinationPolicy.from_settings(settings)
        tls = TlsContexts.from_settings(settings)
        self._challenge = challenge or (
            lambda sub: run_challenge(
                sub.url,
                [s.secret for s in sub.secrets],
                destinations=destinations,
                signing_keys=[k.private_key for k in sub.signing_keys],
                tls=tls,
                proxy=settings.egress_proxy,
                certificate=sub.client_certificate(),
            )
        )

    # -- reads -----------------------------------------------------------------------------
    def get(self, sub_id: str, workspace: str | None = None) -> Subscription:
        """The subscription; NotFound when missing or (with ``workspace``) another's."""
        sub = self._index.get(sub_id)
        if sub is None or (workspace is not None and sub.workspace != workspace):
            raise NotFound(f"unknown subscription {sub_id}")
        return sub

    def list(
        self, workspace: str | None = None, status: Status | None = None
    ) -> list[Subscription]:
        """Oldest first (then by id): a stable order for pagination."""
        subs = self._index.by_workspace(workspace) if workspace else self._index.all()
        if status is not None:
            subs = [s for s in subs if s.status is status]
        return sorted(subs, key=lambda s: (s.created_ms, s.id))

    # -- changes ---------------------------------------------------------------------------
    def create(
        self,
        workspace: str,
        changes: Changes,
        *,
        actor: Actor,
        secret: str | None = None,
        challenge: bool = True,
    ) -> Subscription:
        """Validate, challenge (unless told not to) and write a new ACTIVE subscription;
        nothing is written when any step fails. Its secret is ``secrets[0]``."""
        if secret is not None and not secret.startswith("whsec_"):
            raise InvalidSubscription("secrets look like whsec_<base64>")
        if not workspace.strip():
            raise InvalidSubscription("workspace is required")
        now = now_ms()
        blank = Subscription(
            id=new_subscription_id(),
            workspace=workspace,
            url="",
            events=(),
            secrets=(SecretEntry(secret or generate_secret()),),
            timeout_ms=self._settings.default_timeout_ms,
            status=Status.ACTIVE,
            created_ms=now,
            updated_ms=now,
            changed_by=actor.id,
            ordering="key",
            max_in_flight=DEFAULT_MAX_IN_FLIGHT,
        )
        sub = apply_changes(blank, changes)
        self.check(sub, new_patterns=sub.events)
        limit = self._settings.max_endpoints_per_workspace
        if limit and len(self._index.by_workspace(workspace)) >= limit:
            raise LimitReached(
                f"workspace {workspace} already has {limit} endpoints "
                f"(WEBHOOK_MAX_ENDPOINTS_PER_WORKSPACE={limit})",
                public=f"This workspace has reached its limit of {limit} webhooks: "
                "delete one to add another.",
            )
        if challenge:
            self._run_challenge(sub)
        return self._save(sub)

    def update(
        self,
        sub_id: str,
        changes: Changes,
        *,
        actor: Actor,
        workspace: str | None = None,
        challenge: bool = True,
    ) -> Subscription:
        """Apply ``changes``; a new URL is challenged again (unless told not to). Only the
        patterns the change adds are checked against the catalogue."""
        old = self.get(sub_id, workspace)
        sub = apply_changes(old, changes)
        self.check(sub, new_patterns=tuple(p for p in sub.events if p not in old.events))
        if sub.url != old.url and challenge:
            self._run_challenge(sub)
        return self._save(replace(sub, changed_by=actor.id))

    def enable(self, sub_id: str, *, actor: Actor, workspace: str | None = None) -> Subscription:
        """Back to ACTIVE (and the failure count starts again); a workspace cannot lift an
        operator's BLOCKED."""
        sub = self.get(sub_id, workspace)
        if sub.status is Status.BLOCKED and not actor.operator:
            raise Conflict(f"subscription {sub_id} was blocked by an operator")
        return self._status(sub, Status.ACTIVE, None, actor)

    def disable(self, sub_id: str, *, actor: Actor, workspace: str | None = None) -> Subscription:
        """DISABLED when a workspace asks, BLOCKED when an operator does: either way its
        deliveries become dead letters (``endpoint_disabled``) until enabled."""
        sub = self.get(sub_id, workspace)
        if actor.operator:
            return self._status(sub, Status.BLOCKED, "blocked by an operator", actor)
        if sub.status is Status.BLOCKED:
            raise Conflict(f"subscription {sub_id} was blocked by an operator")
        return self._status(sub, Status.DISABLED, "disabled by the workspace", actor)

    def delete(self, sub_id: str, *, actor: Actor, workspace: str | None = None) -> None:
        sub = self.get(sub_id, workspace)
        self._read_own(self._writer.delete(sub.id), None, sub.id)
        log.info("subscription %s of %s deleted by %s", sub.id, sub.workspace, actor.id)

    def roll_secret(
        self, sub_id: str, grace_ms: int, *, actor: Actor, workspace: str | None = None
    ) -> tuple[Subscription, str]:
        """A new secret that signs first; the current ones keep signing for ``grace_ms``
        (at most: a shorter remaining grace is kept). Returns the new secret, shown once.
        An asymmetric subscription gets a new key pair the same way (its public key is not
        a secret: it is in the subscription's JSON)."""
        if grace_ms < 0:
            raise InvalidSubscription("grace must not be negative")
        sub = self.get(sub_id, workspace)
        now = now_ms()
        new = generate_secret()
        kept = (
            tuple(
                SecretEntry(s.secret, min(s.expires_ms or now + grace_ms, now + grace_ms))
                for s in sub.secrets
                if s.expires_ms is None or s.expires_ms > now
            )
            if grace_ms > 0
            else ()
        )
        keys = sub.signing_keys
        if keys:
            keys = (
                new_signing_key(),
                *(
                    replace(k, expires_ms=min(k.expires_ms or now + grace_ms, now + grace_ms))
                    for k in keys
                    if grace_ms > 0 and (k.expires_ms is None or k.expires_ms > now)
                ),
            )
        rolled = self._save(
            replace(sub, secrets=(SecretEntry(new), *kept), signing_keys=keys, changed_by=actor.id)
        )
        return rolled, new

    # -- rules -----------------------------------------------------------------------------
    def check(self, sub: Subscription, *, new_patterns: tuple[str, ...] = ()) -> None:
        """Every rule a stored subscription must satisfy (InvalidSubscription says which)."""
        self._writer.check(sub)
        if self._catalogue is not None:
            unknown = self._catalogue.unmatched(new_patterns)
            if unknown:
                raise InvalidSubscription(
                    f"unknown event type: {', '.join(unknown)} matches no catalogued type "
                    "(see `event-types list`)",
                    field="events",
                    public=f"Not an event type of this service: {', '.join(unknown)}.",
                )
        if sub.rate_limit is not None and not 0 < sub.rate_limit <= 100_000:
            raise InvalidSubscription(
                "rate limit must be a positive number of deliveries/s", field="rate_limit"
            )
        if sub.ordering is not None and sub.ordering not in ORDERINGS:
            raise InvalidSubscription(f"ordering must be one of {', '.join(ORDERINGS)}")
        low, high = MAX_IN_FLIGHT_RANGE
        if sub.max_in_flight is not None and not low <= sub.max_in_flight <= high:
            raise InvalidSubscription(
                f"max in flight must be from {low} to {high}", field="max_in_flight"
            )
        self._check_delivery_shape(sub)
        self._check_client_certificate(sub)

    @staticmethod
    def _check_client_certificate(sub: Subscription) -> None:
        """Both or neither; a PEM certificate and the unencrypted PEM key that matches it."""
        if (sub.client_cert is None) != (sub.client_key is None):
            raise InvalidSubscription("a client certificate and its key are set together")
        if sub.client_cert is not None and sub.client_key is not None:
            try:
                check_client_certificate(sub.client_cert, sub.client_key)
            except InvalidCertificate as exc:
                raise InvalidSubscription(str(exc)) from None

    @staticmethod
    def _check_delivery_shape(sub: Subscription) -> None:
        """Custom headers and selected fields."""
        if len(sub.headers) > MAX_HEADERS:
            raise InvalidSubscription(f"at most {MAX_HEADERS} custom headers", field="headers")
        for name, value in sub.headers:
            try:
                check_header(name, value)
            except InvalidHeader as exc:
                raise InvalidSubscription(str(exc), field="headers") from None
        for field_name in sub.fields:
            if not field_name or any(c in field_name for c in " \t\r\n,"):
                raise InvalidSubscription(f"malformed field name {field_name!r}", field="fields")

    def _run_challenge(self, sub: Subscription) -> None:
        if self._challenges.recent(sub.workspace, sub.url):
            return
        try:
            self._challenge(sub)
        except ChallengeFailed as exc:
            raise InvalidSubscription(str(exc), field="url", public=exc.public) from None
        self._challenges.remember(sub.workspace, sub.url)

    def _status(
        self, sub: Subscription, status: Status, reason: str | None, actor: Actor
    ) -> Subscription:
        return self._save(replace(sub, status=status, status_reason=reason, changed_by=actor.id))

    def _read_own(self, position: tuple[int, int], sub: Subscription | None, sub_id: str) -> None:
        """Wait until the table that serves reads has applied this write (so the caller,
        and every later read, sees it); without a follower, apply it directly."""
        if self._applied is not None and self._applied(*position):
            return
        if sub is None:
            self._index.remove(sub_id)
        else:
            self._index.upsert(sub)

    def _save(self, sub: Subscription) -> Subscription:
        saved = replace(sub, updated_ms=now_ms())
        self._read_own(self._writer.put(saved), saved, saved.id)
        log.info(
            "subscription %s of %s saved by %s (status %s)",
            saved.id,
            saved.workspace,
            saved.changed_by,
            saved.status.value,
        )
        return saved
