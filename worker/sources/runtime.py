"""What ``webhook-worker api`` runs for incoming webhooks, built in one call by its
composition root (:mod:`worker.api.server`): the sources table, the webhook-id ledger and
their followers, the intake's producer, the service and the request handler."""

from __future__ import annotations

from dataclasses import dataclass

from worker.codec.avro import AvroCodec
from worker.config import Settings
from worker.kafka.acked import AckedProducer
from worker.kafka.clients import make_admin, make_consumer, make_unretried_producer
from worker.kafka.compacted import CompactedFollower
from worker.kafka.topics import Topics
from worker.observability.api_metrics import ApiMetrics
from worker.sources.dedupe import WRITE_TIMEOUT_MS, DedupeLedger
from worker.sources.intake import Intake
from worker.sources.landing import ensure_topic, record_bytes_limit
from worker.sources.service import SourceService
from worker.sources.table import SourceTable, open_sources
from worker.subscriptions.secrets import SecretBox

__all__ = ["IncomingRuntime", "intake_producer", "open_incoming"]

# Requests wait on the ledger's follower: a short poll keeps that wait to milliseconds.
_LEDGER_POLL_S = 0.002
_LEDGER_FETCH = {"enable.partition.eof": "true", "fetch.wait.max.ms": "10"}


def intake_producer(settings: Settings) -> AckedProducer:
    """A producer for records that requests wait on: small batches (``linger.ms=5``), large
    enough records, an acknowledgement or a failure within ``WRITE_TIMEOUT_MS``, and no
    resends of its own (a failed write is the sender's to retry; the ledger finds a record
    whose acknowledgement was lost, so none lands twice)."""
    limit = record_bytes_limit(settings.max_event_bytes) + 1024
    producer = make_unretried_producer(
        settings,
        **{
            "linger.ms": "5",
            "message.max.bytes": str(limit),
            "message.timeout.ms": str(WRITE_TIMEOUT_MS),
        },
    )
    return AckedProducer(producer, "intake-producer")


@dataclass
class IncomingRuntime:
    sources: SourceTable
    ledger_follower: CompactedFollower
    producer: AckedProducer
    service: SourceService
    intake: Intake

    def ready(self) -> bool:
        ledger = self.ledger_follower.caught_up.is_set() and self.ledger_follower.error is None
        return self.sources.ready() and ledger

    async def stop(self) -> None:
        await self.intake.drain()
        self.producer.stop()
        self.ledger_follower.stop()
        self.sources.stop()


def open_incoming(
    settings: Settings, avro: AvroCodec, box: SecretBox | None, metrics: ApiMetrics
) -> IncomingRuntime:
    """Start following ``sources`` and ``incoming-dedupe``; ``ready()`` once caught up."""
    topics = Topics.from_settings(settings)
    sources = open_sources(settings, avro, box)
    producer = intake_producer(settings)
    producer.start()
    ledger = DedupeLedger(
        avro, producer, topics.incoming_dedupe, settings.incoming_dedupe_window_ms
    )
    follower = CompactedFollower(
        make_consumer(settings, None, **_LEDGER_FETCH),
        topics.incoming_dedupe,
        ledger.apply,
        "incoming-dedupe",
        poll_s=_LEDGER_POLL_S,
    )
    follower.start()
    admin = make_admin(settings)
    service = SourceService(
        settings,
        table=sources,
        producer=producer.producer,
        avro=avro,
        box=box,
        ensure_topic=lambda name: ensure_topic(admin, name, settings),
    )
    intake = Intake(settings, sources=sources, ledger=ledger, producer=producer, metrics=metrics)
    return IncomingRuntime(sources, follower, producer, service, intake)
