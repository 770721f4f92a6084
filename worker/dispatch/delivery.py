"""One delivery attempt: look up the subscription, sign, POST, and describe the outcome.

The :class:`Attempter` performs no Kafka I/O; the dispatcher turns its :class:`Outcome`
into writes. Secrets never leave this module except as HMACs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from opentelemetry.trace import Span

from worker.dispatch.policy import Next, Verdict, classify, parse_retry_after
from worker.model import Attempt, DeliveryTask
from worker.observability.metrics import Metrics
from worker.observability.spans import deliver_request, deliver_response
from worker.outbound.client import HttpSender, TransportError
from worker.outbound.headers import RESERVED_HEADERS
from worker.outbound.recorded import REQUEST_BODY_KEPT, recorded
from worker.outbound.signing import decode_secret, load_signing_key, sign_headers
from worker.subscriptions.model import Status, Subscription

__all__ = ["Attempter", "Outcome"]

BODY_EXCERPT = 1024


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    status: int | None = None
    error: str | None = None
    retry_after_ms: int | None = None
    response_excerpt: str = ""
    attempt: Attempt | None = None  # None when no HTTP attempt was made


class Attempter:
    """Performs attempts for the dispatcher. ``lookup`` reads the live subscription table."""

    def __init__(
        self,
        *,
        lookup: Callable[[str], Subscription | None],
        sender: HttpSender,
        metrics: Metrics,
        trace_propagate: bool = False,
    ) -> None:
        self._lookup = lookup
        self._propagate = trace_propagate
        self._sender = sender
        self._metrics = metrics
        self._keys: dict[tuple[str, ...], list[bytes]] = {}
        self._pairs: dict[tuple[str, ...], list[Ed25519PrivateKey]] = {}

    async def attempt(self, task: DeliveryTask, span: Span | None = None) -> Outcome:
        """One attempt; ``span`` (the attempt's ``deliver`` span, when traced) gets the HTTP
        attributes; the dispatcher ends it once the outcome is decided."""
        sub = self._lookup(task.subscription_id)
        if sub is None:
            return Outcome(Verdict(Next.DEAD_LETTER, "subscription_deleted"))
        if sub.status is not Status.ACTIVE:
            return Outcome(Verdict(Next.DEAD_LETTER, "endpoint_disabled"))
        task.attempt += 1
        now_s = time.time()
        headers = self._headers(sub, task, int(now_s))
        if span is not None:
            headers.update(deliver_request(span, sub.url, self._propagate))
        started_ms = int(now_s * 1000)
        try:
            response = await self._sender.post(
                sub.url,
                task.body,
                headers,
                sub.timeout_ms / 1000,
                sub.workspace,
                sub.client_certificate(),
            )
        except TransportError as exc:
            verdict = classify(None, exc.kind)
            if span is not None:
                deliver_response(span, None, exc.kind)
            self._metrics.attempt(verdict.next.value, exc.kind, exc.latency_s)
            return Outcome(
                verdict,
                error=f"{exc.kind}: {exc}",
                attempt=recorded(
                    self._record(
                        task,
                        sub,
                        started_ms,
                        exc.latency_s,
                        verdict,
                        None,
                        f"{exc.kind}: {exc}",
                        b"",
                    ),
                    headers,
                    sub.headers,
                ),
            )
        verdict = classify(response.status, None)
        if span is not None:
            deliver_response(span, response.status, None)
        self._metrics.attempt(verdict.next.value, f"{response.status // 100}xx", response.latency_s)
        excerpt = response.body[:BODY_EXCERPT].decode("utf-8", "replace")
        return Outcome(
            verdict,
            status=response.status,
            retry_after_ms=parse_retry_after(response.retry_after, started_ms),
            response_excerpt=excerpt,
            attempt=recorded(
                self._record(
                    task,
                    sub,
                    started_ms,
                    response.latency_s,
                    verdict,
                    response.status,
                    None,
                    response.body,
                ),
                headers,
                sub.headers,
                response,
            ),
        )

    def crashed(self, task: DeliveryTask) -> Outcome:
        return Outcome(Verdict(Next.RETRY, "internal_error"), error="internal error")

    def _headers(self, sub: Subscription, task: DeliveryTask, now_s: int) -> dict[str, str]:
        secrets = tuple(sub.active_secrets(now_s * 1000))
        keys = self._keys.get(secrets)
        if keys is None:
            if len(self._keys) > 10_000:
                self._keys.clear()
            keys = self._keys[secrets] = [decode_secret(s) for s in secrets]
        headers = {k: v for k, v in sub.headers if k.lower() not in RESERVED_HEADERS}
        headers["content-type"] = "application/json"
        headers.update(
            sign_headers(task.delivery_id, now_s, task.body, keys, self._signing(sub, now_s))
        )
        return headers

    def _signing(self, sub: Subscription, now_s: int) -> list[Ed25519PrivateKey]:
        """The subscription's active ed25519 keys (``v1a``), loaded once per key set."""
        seeds = tuple(sub.active_signing_keys(now_s * 1000))
        if not seeds:
            return []
        pairs = self._pairs.get(seeds)
        if pairs is None:
            if len(self._pairs) > 10_000:
                self._pairs.clear()
            pairs = self._pairs[seeds] = [load_signing_key(s) for s in seeds]
        return pairs

    def _record(
        self,
        task: DeliveryTask,
        sub: Subscription,
        started_ms: int,
        latency_s: float,
        verdict: Verdict,
        status: int | None,
        error: str | None,
        body: bytes,
    ) -> Attempt:
        return Attempt(
            delivery_id=task.delivery_id,
            subscription_id=task.subscription_id,
            workspace=task.workspace,
            event_id=task.event_id,
            event_type=task.event_type,
            attempt=task.attempt,
            started_ms=started_ms,
            latency_ms=round(latency_s * 1000, 3),
            url=sub.url,
            outcome=verdict.next.value,
            status=status,
            error=error,
            request_body=task.body[:REQUEST_BODY_KEPT].decode("utf-8", "replace"),
            request_size=len(task.body),
            sent_again=task.redrive_id is not None,
            response_body=body[:BODY_EXCERPT].decode("utf-8", "replace"),
        )
