"""What the API's routes work with, built once per process by :mod:`worker.api.server`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Producer

from worker.api.idempotency import IdempotencyStore
from worker.api.ratelimit import RateLimiter
from worker.catalogue import Catalogue
from worker.codec.records import RecordCodec
from worker.config import Settings
from worker.deliverylog.queries import DeliveryLog
from worker.kafka.topics import Topics
from worker.observability.api_metrics import ApiMetrics
from worker.outbound.destinations import DestinationPolicy
from worker.portal.gate import Portal
from worker.sources.intake import Intake
from worker.sources.service import SourceService
from worker.subscriptions.service import SubscriptionService
from worker.tokens.registry import TokenRegistry

__all__ = ["ApiContext"]


@dataclass(frozen=True, slots=True)
class ApiContext:
    settings: Settings
    service: SubscriptionService
    tokens: TokenRegistry
    log: DeliveryLog
    log_lag: Callable[[], int]
    catalogue: Catalogue | None
    idempotency: IdempotencyStore
    limiter: RateLimiter
    metrics: ApiMetrics
    producer: Producer  # re-sends and redrives
    codec: RecordCodec
    topics: Topics
    destinations: DestinationPolicy
    ready: Callable[[], bool]
    portal: Portal | None = None  # None: no portal routes (``/portal/api`` answers 404)
    # Incoming webhooks: the sources service (``/v1/.../sources``) and ``POST /in/{id}``.
    sources: SourceService | None = None
    intake: Intake | None = None
