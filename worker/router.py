"""The router: input events in, one delivery task per matching subscription out.

Each input record is decoded and validated; a bad one goes to ``invalid-events`` with the
error (never a crash, never a stall). A good one is matched against the subscription table
and fanned out to ``deliveries``, keyed by subscription id. The input offset is stored only
once every task it produced (or its invalid-event record) is acknowledged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from worker.codec.events import InvalidEventError
from worker.codec.records import RecordCodec
from worker.config import Settings
from worker.inputs import InputDecoder, PartitionHeldError
from worker.kafka.clients import close_consumer
from worker.kafka.intake import FairIntake
from worker.kafka.lag import LagReporter
from worker.kafka.offsets import OffsetBook, OffsetTracker, position
from worker.kafka.stage import FatalLatch, StageLoop
from worker.kafka.topics import Topics
from worker.kafka.writes import produce
from worker.model import DeliveryTask, Event, InvalidRecord
from worker.observability.metrics import Metrics
from worker.observability.spans import Spans
from worker.subscriptions.index import SubscriptionIndex
from worker.subscriptions.model import Subscription
from worker.subscriptions.render import render_body

__all__ = ["Router", "delivery_id", "delivery_task", "ordering_key"]

log = logging.getLogger(__name__)

POLL_BATCH = 1000


# RFC 4648 base32, lower-case. base64.b32encode is pure Python in 3.11 (about 2.7 us for the
# 15-byte digest, once per delivery); two characters per 10-bit value make it 12 lookups.
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
_BASE32_PAIRS = tuple(high + low for high in _BASE32 for low in _BASE32)
_DIGEST_SHIFTS = tuple(range(110, -1, -10))  # the 120-bit digest, most significant first


def delivery_id(event_id: str, subscription_id: str) -> str:
    """The Standard Webhooks ``webhook-id``: derived, so a replayed event keeps its id.

    ``msg_`` + the lower-case base32 of a 15-byte BLAKE2b of both ids. Receivers dedupe on it
    across replays, re-drives and upgrades: the output must never change.
    """
    digest = hashlib.blake2b(f"{event_id}\0{subscription_id}".encode(), digest_size=15).digest()
    n = int.from_bytes(digest, "big")
    return "msg_" + "".join([_BASE32_PAIRS[n >> shift & 0x3FF] for shift in _DIGEST_SHIFTS])


def ordering_key(event: Event, kafka_key: bytes | None) -> bytes | None:
    """The event's ordering key (contract, "Input events"): its ``ordering_key`` field when a
    non-empty string; else ``"<entity>/<record.id>"`` when the record has an id (a number and
    its decimal string are the same id); else the input record's Kafka key; else None."""
    explicit = event.data.get("ordering_key")
    if isinstance(explicit, str) and explicit:
        return explicit.encode()
    record = event.data.get("record")
    if isinstance(record, dict):
        record_id = record.get("id")
        text: str | None = None
        if isinstance(record_id, str) and record_id:
            text = record_id
        elif isinstance(record_id, int) and not isinstance(record_id, bool):
            text = str(record_id)
        elif isinstance(record_id, float) and record_id.is_integer():
            text = str(int(record_id))
        if text is not None:
            return f"{event.entity or ''}/{text}".encode()
    return kafka_key or None


def delivery_task(
    event: Event,
    sub: Subscription,
    key: bytes | None,
    now_ms: int,
    trace: tuple[str | None, str | None] | None = None,
) -> DeliveryTask:
    """The delivery task the router writes for ``event`` and one matching ``sub``: ``key`` is
    the event's :func:`ordering_key`, ``trace`` the route span's context when sampled."""
    scope = sub.scope
    traceparent, tracestate = trace or (None, None)
    return DeliveryTask(
        delivery_id=delivery_id(event.id, sub.id),
        subscription_id=sub.id,
        workspace=event.workspace,
        event_id=event.id,
        event_type=event.event,
        body=render_body(event, sub),
        ordered=scope != "none",
        event_time_ms=event.timestamp_ms,
        created_ms=now_ms,
        source=event.source,
        ordering=scope,
        ordering_key=key if scope != "none" else None,
        traceparent=traceparent,
        tracestate=tracestate,
    )


class Router:
    """Owns the router consumer loop. Built and wired by :mod:`worker.app`."""

    def __init__(
        self,
        *,
        settings: Settings,
        topics: Topics,
        consumer: Consumer,
        producer: Producer,
        inputs: InputDecoder,
        codec: RecordCodec,
        index: SubscriptionIndex,
        metrics: Metrics,
        table_ready: Callable[[], bool],
        heartbeat: Callable[[], None] = lambda: None,
        spans: Spans | None = None,
    ) -> None:
        self._settings = settings
        self._topics = topics
        self._consumer = consumer
        self._producer = producer
        self._inputs = inputs
        self._codec = codec
        self._index = index
        self._metrics = metrics
        self._table_ready = table_ready
        self._heartbeat = heartbeat
        self._spans = spans  # None: tracing off, no span is made
        self._offsets = OffsetBook()
        # Polled records, handed out a partition at a time in turn: a backlog on one input
        # partition does not keep the others' events waiting behind it.
        self._polled = FairIntake(consumer, held=inputs.held)
        self._fatal = FatalLatch()
        self._assigned = False
        self._loop = StageLoop(
            name="router",
            consumer=consumer,
            producer=producer,
            offsets=self._offsets,
            lag=LagReporter(consumer, f"{settings.group_id}-router", metrics),
            fatal=self._fatal,
            heartbeat=heartbeat,
        )

    @property
    def inputs(self) -> InputDecoder:
        return self._inputs

    @property
    def assigned(self) -> bool:
        return self._assigned

    async def run(self, stop: asyncio.Event) -> None:
        # Routing before the table has caught up would silently miss subscriptions.
        while not self._table_ready():
            self._heartbeat()
            if stop.is_set():
                close_consumer(self._consumer, "router")
                return
            await asyncio.sleep(0.05)
        await self._loop.run(self, self._settings.input_topic_list(), stop)

    # -- the stage (run by StageLoop) ----------------------------------------------------

    def step(self) -> bool:
        # A partition held for the Schema Registry was sought back to its held record, and
        # what waited of it here dropped: resumed, it is read again from that record.
        self._inputs.resume_due(self._consumer)
        self._polled.add(self._consumer.consume(POLL_BATCH, timeout=0))
        return self._polled.handle(self._route) > 0

    async def drain(self) -> None:
        self._producer.flush(self._settings.shutdown_timeout_ms / 1000)

    def _route(self, message: Message) -> None:
        # Decoded before its offset is tracked: a record held for the Schema Registry is not
        # read now, and is read again (and tracked then) when its partition resumes.
        error: str | None = None
        try:
            event = self._inputs.decode(message, self._consumer)
        except PartitionHeldError:
            # Held (or past the held record): read again from the held record on resuming.
            topic, partition, _ = position(message)
            self._polled.drop([(topic, partition)])
            return
        except InvalidEventError as exc:
            event, error = None, str(exc)
        begun = self._offsets.begin(message)
        if begun is None:
            return
        topic, partition, offset, tracker = begun
        self._metrics.event_consumed(topic)
        if error is not None:
            if self._spans is not None:
                Spans.invalid(self._spans.route(message.headers(), topic, partition, offset), error)
            self._invalid(message, error, tracker, offset)
            return
        if event is None:  # not an event (e.g. a Debezium tombstone)
            tracker.finish(offset)
            return
        span = None
        if self._spans is not None:
            span = self._spans.route(message.headers(), topic, partition, offset)
        subs = self._index.match(event)
        trace = Spans.routed(span, event, subs) if span is not None else None
        if not subs:
            tracker.finish(offset)
            return
        self._fan_out(event, subs, tracker, offset, message.key(), trace)

    def _fan_out(
        self,
        event: Event,
        subs: list[Subscription],
        tracker: OffsetTracker,
        offset: int,
        kafka_key: bytes | None,
        trace: tuple[str | None, str | None] | None = None,
    ) -> None:
        remaining = len(subs)

        def acked(err: KafkaError | None, _msg: Message) -> None:
            nonlocal remaining
            if err is not None:
                self._fatal.set(f"write to {self._topics.deliveries} failed: {err}")
                return
            remaining -= 1
            if remaining == 0:
                tracker.finish(offset)

        now_ms = int(time.time() * 1000)
        key = ordering_key(event, kafka_key)
        for sub in subs:
            task = delivery_task(event, sub, key, now_ms, trace)
            produce(
                self._producer,
                self._topics.deliveries,
                self._codec.encode_task(task),
                sub.id.encode(),
                acked,
            )
        self._metrics.tasks_routed(len(subs))

    def _invalid(self, message: Message, error: str, tracker: OffsetTracker, offset: int) -> None:
        topic, partition, _ = position(message)
        _, timestamp_ms = message.timestamp()
        record = InvalidRecord(
            error=error,
            topic=topic,
            partition=partition,
            offset=offset,
            timestamp_ms=max(timestamp_ms, 0),
            key=message.key(),
            value=message.value(),
            headers=_headers(message),
        )
        self._metrics.event_invalid(error.split(":", 1)[0][:40])
        log.info("invalid event at %s: %s", f"{record.topic}/{record.partition}/{offset}", error)

        def acked(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                self._fatal.set(f"write to {self._topics.invalid_events} failed: {err}")
            else:
                tracker.finish(offset)

        produce(
            self._producer,
            self._topics.invalid_events,
            self._codec.encode_invalid(record),
            message.key(),
            acked,
        )

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned = True

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._producer.flush(10)
        self._offsets.commit(consumer)
        self.on_lost(consumer, partitions)

    def on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Lost (the session expired, e.g. the broker was unreachable): another member may own
        # them now, so there is nothing to commit, and a flush would block the loop for
        # nothing. Queued writes still go out when the broker is back.
        for tp in partitions:
            self._offsets.drop({tp.partition}, {tp.topic})
        self._polled.drop((tp.topic, tp.partition) for tp in partitions)
        self._inputs.drop(partitions)


def _headers(message: Message) -> dict[str, bytes]:
    headers = message.headers() or []
    return {
        str(k): (v.encode() if isinstance(v, str) else (v or b""))
        for k, v in (headers.items() if isinstance(headers, dict) else headers)
    }
