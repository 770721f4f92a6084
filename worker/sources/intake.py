"""``POST /in/{source_id}``: verify, deduplicate, write, and answer only once the broker has
acknowledged the record.

Order: unknown source 404; the source's rate limit 429 (Retry-After); the body, capped at
``WEBHOOK_MAX_EVENT_BYTES`` by the API's gate (413); verification 401 (nothing written);
then, for a ``standard-webhooks`` source (whose ``webhook-id`` is signed), the claim
(:mod:`worker.sources.dedupe`): a repeat is answered 200 without a second record.
The record is JSON keyed by the source id::

    {"source", "workspace", "received_at", "webhook_id", "headers", "body", "body_encoding"}

``headers`` are lowercased, without ``authorization`` and ``cookie`` (repeated ones joined
with ``, ``); ``body`` is the raw body as UTF-8 text, or base64 when it is not UTF-8 (or when
JSON escaping would make it longer than base64).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from worker.api.problems import Problem, problem_response
from worker.api.ratelimit import RateLimiter
from worker.config import Settings
from worker.kafka.acked import AckedProducer, WriteFailed
from worker.observability.api_metrics import ApiMetrics
from worker.observability.spans import record_headers
from worker.sources.dedupe import Claim, DedupeLedger, Outcome
from worker.sources.landing import MAX_HEADER_BYTES, record_bytes_limit
from worker.sources.model import Source, Verify
from worker.sources.recover import RecoveryFailed, record_landed
from worker.sources.table import SourceTable
from worker.sources.verify import Refused, verify_request
from worker.tokens.model import rfc3339

__all__ = ["ROUTE", "Intake", "envelope"]

log = logging.getLogger(__name__)

DROPPED_HEADERS = frozenset({"authorization", "cookie"})
_MAX_WEBHOOK_ID = 256
_PAUSE_S = 3600.0


class _Route:
    path = "/in/{source_id}"


ROUTE = _Route()


def envelope(
    source: Source,
    received_ms: int,
    webhook_id: str | None,
    headers: dict[str, str],
    body: bytes,
    limit: int,
) -> bytes:
    """The record's value (see the module docstring)."""
    document: dict[str, Any] = {
        "source": source.id,
        "workspace": source.workspace,
        "received_at": rfc3339(received_ms),
        "webhook_id": webhook_id,
        "headers": headers,
        "body": None,
        "body_encoding": "utf8",
    }
    try:
        document["body"] = body.decode("utf-8")
        value = orjson.dumps(document)
        if len(value) <= limit:
            return value
    except UnicodeDecodeError:
        pass
    document["body"] = base64.b64encode(body).decode()
    document["body_encoding"] = "base64"
    return orjson.dumps(document)


class Intake:
    """The request handler; built once by the API's composition root."""

    def __init__(
        self,
        settings: Settings,
        *,
        sources: SourceTable,
        ledger: DedupeLedger,
        producer: AckedProducer,
        metrics: ApiMetrics,
        landed: Callable[[str, str, str, str, int], Awaitable[bool]] | None = None,
    ) -> None:
        self._settings = settings
        self._sources = sources
        self._ledger = ledger
        self._producer = producer
        self._metrics = metrics
        self._limiter = RateLimiter(settings.incoming_rate_limit, _burst(settings))
        self._limit = record_bytes_limit(settings.max_event_bytes)
        self._pause = settings.incoming_test_pause
        self._landed = landed or self._scan
        self._marks: set[asyncio.Task[None]] = set()

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry for every path under ``/in/``."""
        scope["route"] = ROUTE  # the metrics' route template
        if scope["method"] != "POST":
            response = problem_response(405, "POST only", {"allow": "POST"})
        else:
            try:
                response = await self.handle(Request(scope, receive), scope["path"][4:])
            except Problem as exc:
                response = problem_response(exc.status, exc.detail, exc.headers, **exc.extra)
        await response(scope, receive, send)

    async def handle(self, request: Request, source_id: str) -> Response:
        source = self._sources.get(source_id)
        if source is None:
            return self._refuse("unknown_source", 404, f"unknown source {source_id[:100]}")
        wait = self._limiter.take(source.id)
        if wait > 0:
            return self._refuse(
                "rate_limited",
                429,
                "too many requests for this source",
                {"retry-after": RateLimiter.retry_after(wait)},
            )
        return await self._verified(request, source)

    async def _verified(self, request: Request, source: Source) -> Response:
        """Read, verify and record the request of a known source."""
        try:
            body = await request.body()  # the gate caps it
        except Problem as exc:  # the gate's 413
            self._metrics.incoming("too_large" if exc.status == 413 else "failed")
            raise
        received_ms = int(time.time() * 1000)
        headers = _kept_headers(request)
        if headers is None:
            return self._refuse("refused", 431, "request headers are too large")
        try:
            verify_request(
                source.verify, headers, body, source.secrets_at(received_ms), received_ms / 1000
            )
        except Refused as exc:
            return self._refuse("refused", 401, f"signature verification failed: {exc}")
        webhook_id = headers.get("webhook-id") or None
        if webhook_id is not None and len(webhook_id) > _MAX_WEBHOOK_ID:
            return self._refuse("refused", 400, "webhook-id is longer than 256 characters")
        value = envelope(source, received_ms, webhook_id, headers, body, self._limit)
        if webhook_id is None or source.verify is not Verify.STANDARD_WEBHOOKS:
            # Only a signed webhook-id is deduplicated: with hmac-sha256 or none, anyone
            # holding one signed body could claim other messages' ids and suppress them.
            return await self._write(source, value, None, None)
        return await self._once(source, value, webhook_id)

    async def _once(self, source: Source, value: bytes, webhook_id: str) -> Response:
        """Write the record unless the webhook-id already landed (the ledger decides)."""
        key = f"{source.id} {webhook_id}"
        try:
            claim = await self._ledger.claim(key)
        except (WriteFailed, TimeoutError) as exc:
            log.warning("incoming %s: claim failed: %s", source.id, exc)
            return self._refuse("failed", 503, "the request could not be recorded; retry")
        if claim.outcome is Outcome.LANDED:
            self._metrics.incoming("duplicate")
            return _accepted(webhook_id, duplicate=True)
        if claim.outcome is Outcome.BUSY:
            return self._busy(claim)
        if claim.recover_since_ms is not None:
            try:
                found = await self._landed(
                    source.topic, source.id, webhook_id, key, claim.recover_since_ms
                )
            except RecoveryFailed as exc:
                log.warning("incoming %s: %s", source.id, exc)
                return self._refuse("failed", 503, "the request could not be recorded; retry")
            if found:
                await self._ledger.landed(key, claim.owner)
                self._metrics.incoming("duplicate")
                return _accepted(webhook_id, duplicate=True)
        if self._pause == "claimed":
            await asyncio.sleep(_PAUSE_S)
        if not claim.may_write(int(time.time() * 1000)):
            return self._busy(claim)
        return await self._write(source, value, key, claim)

    async def _write(
        self, source: Source, value: bytes, key: str | None, claim: Claim | None
    ) -> Response:
        try:
            # The request's span context goes onward with the record (docs/tracing.md).
            await self._producer.send(source.topic, value, source.id.encode(), record_headers())
        except WriteFailed as exc:
            log.warning("incoming %s: %s", source.id, exc)
            return self._refuse("failed", 503, "the request could not be recorded; retry")
        if self._pause == "recorded":
            await asyncio.sleep(_PAUSE_S)
        if key is not None and claim is not None:
            # Not awaited by the answer: a lost mark costs a later repeat a recovery read.
            task = asyncio.create_task(self._mark_landed(key, claim.owner))
            self._marks.add(task)
            task.add_done_callback(self._marks.discard)
        self._metrics.incoming("accepted")
        webhook_id = key.split(" ", 1)[1] if key else None
        return _accepted(webhook_id)

    async def _mark_landed(self, key: str, owner: str) -> None:
        try:
            await self._ledger.landed(key, owner)
        except WriteFailed as exc:
            log.warning("incoming: landed mark for %r not written: %s", key[:120], exc)

    async def _scan(
        self, topic: str, source_id: str, webhook_id: str, _key: str, since_ms: int
    ) -> bool:
        return await asyncio.to_thread(
            record_landed, self._settings, topic, source_id, webhook_id, since_ms
        )

    async def drain(self) -> None:
        """Wait for the landed marks still being written (shutdown)."""
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._marks)

    def _busy(self, claim: Claim) -> Response:
        return self._refuse(
            "busy",
            503,
            "the same webhook-id is being recorded by another request; retry",
            {"retry-after": str(claim.retry_after_s)},
        )

    def _refuse(
        self, outcome: str, status: int, detail: str, headers: dict[str, str] | None = None
    ) -> Response:
        self._metrics.incoming(outcome)
        return problem_response(status, detail, headers)


def _accepted(webhook_id: str | None, *, duplicate: bool = False) -> Response:
    document = {"received": True, "webhook_id": webhook_id, "duplicate": duplicate}
    return Response(orjson.dumps(document), media_type="application/json")


def _kept_headers(request: Request) -> dict[str, str] | None:
    """Lowercased headers without credentials; None when they are too large to keep."""
    kept: dict[str, str] = {}
    size = 0
    for raw_name, raw_value in request.scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        if name in DROPPED_HEADERS:
            continue
        value = raw_value.decode("latin-1")
        size += len(name) + len(value)
        kept[name] = f"{kept[name]}, {value}" if name in kept else value
    return kept if size <= MAX_HEADER_BYTES else None


def _burst(settings: Settings) -> int:
    return max(1, int(settings.incoming_rate_limit * 2))
