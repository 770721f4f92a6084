"""The composition root: the only place that builds clients and stages and wires them.

``build_worker`` builds a worker's clients and stages (arq's ``create_worker``);
``run_worker`` builds one and runs the router, the dispatcher, or both in one asyncio loop,
with the subscription table followed in a background thread and the health/metrics server on
the same loop. Shutdown order (SIGTERM/SIGINT): stop polling, drain in-flight deliveries within
WEBHOOK_SHUTDOWN_TIMEOUT, flush the producer, commit, close the consumers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from confluent_kafka import Producer

from worker import __version__
from worker.components import Codecs, open_table, secret_box
from worker.config import Settings
from worker.dispatch.delivery import Attempter
from worker.dispatch.disabling import FailureTracker
from worker.dispatch.dispatcher import Dispatcher
from worker.inputs import InputDecoder, load_inputs
from worker.inputs.registry import SchemaRegistry
from worker.kafka.clients import make_consumer, make_producer
from worker.kafka.offsets import OffsetBook
from worker.kafka.probe import broker_probe
from worker.kafka.topics import Topics
from worker.memory import settle_heap
from worker.observability.health import HealthServer, LoopHeartbeat, PeriodicProbe
from worker.observability.looplag import LoopLagMonitor
from worker.observability.metrics import Metrics
from worker.observability.spans import Spans
from worker.observability.tracing import Tracing, open_tracing
from worker.outbound.client import HttpSender
from worker.outbound.destinations import DestinationPolicy
from worker.outbound.tls import TlsContexts
from worker.router import Router
from worker.subscriptions.model import Status, Subscription
from worker.subscriptions.store import SubscriptionWriter, now_ms
from worker.subscriptions.table import TableFollower

__all__ = ["ROLES", "Worker", "build_worker", "input_decoder", "run_worker"]

log = logging.getLogger(__name__)

ROLES = ("all", "router", "dispatcher")


@dataclass
class Worker:
    """A built worker: its clients and stages, wired and not yet running."""

    settings: Settings
    metrics: Metrics
    heartbeat: LoopHeartbeat
    follower: TableFollower
    producer: Producer
    topics: Topics
    stages: list[Router | Dispatcher]
    sender: HttpSender | None
    tracing: Tracing | None = None


def build_worker(settings: Settings, role: str = "all") -> Worker:
    """Build the clients and the stages of ``role`` and wire them; nothing runs yet (the
    subscription table's follower thread starts, so the table can catch up meanwhile)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (choose from {', '.join(ROLES)})")
    topics = Topics.from_settings(settings)
    codecs = Codecs.load()
    metrics = Metrics(
        input_topics=[t for t in settings.input_topic_list() if not t.startswith("^")],
        retry_delays=[t.rsplit(".", 1)[-1] for t in topics.retry],
    )
    metrics.build_info(__version__)
    tracing = open_tracing(settings, metrics.spans_dropped)
    spans = Spans(tracing.tracer, propagate=tracing.propagate) if tracing is not None else None
    heartbeat = LoopHeartbeat()
    follower = open_table(settings, codecs)
    producer = make_producer(settings)
    stages: list[Router | Dispatcher] = []
    sender: HttpSender | None = None

    if role in ("all", "router"):
        inputs = input_decoder(settings, codecs, metrics)
        consumer = make_consumer(settings, f"{settings.group_id}-router")
        stages.append(
            Router(
                settings=settings,
                topics=topics,
                consumer=consumer,
                producer=producer,
                inputs=inputs,
                codec=codecs.records,
                index=follower.table.index,
                metrics=metrics,
                table_ready=follower.ready,
                heartbeat=heartbeat.beat,
                spans=spans,
            )
        )
    if role in ("all", "dispatcher"):
        sender = HttpSender(
            max_connections=settings.max_in_flight,
            destinations=DestinationPolicy.from_settings(settings),
            user_agent=f"webhook-worker/{__version__}",
            tls=TlsContexts.from_settings(settings),
            proxy=settings.egress_proxy,
        )
        # The broker's commit confirmations bound what the finished-past-commit record holds.
        offsets = OffsetBook()
        consumer = make_consumer(
            settings, f"{settings.group_id}-dispatcher", on_commit=offsets.on_commit
        )
        stages.append(
            Dispatcher(
                settings=settings,
                topics=topics,
                consumer=consumer,
                offsets=offsets,
                producer=producer,
                make_reader=lambda: make_consumer(
                    settings, None, **{"enable.partition.eof": "true"}
                ),
                codec=codecs.records,
                attempter=Attempter(
                    lookup=follower.table.index.get,
                    sender=sender,
                    metrics=metrics,
                    trace_propagate=settings.trace_propagate,
                ),
                lookup=follower.table.index.get,
                failures=_failure_tracker(settings, follower, producer, codecs),
                metrics=metrics,
                heartbeat=heartbeat.beat,
                spans=spans,
            )
        )

    return Worker(settings, metrics, heartbeat, follower, producer, topics, stages, sender, tracing)


def input_decoder(settings: Settings, codecs: Codecs, metrics: Metrics | None) -> InputDecoder:
    """The router's decoder: the mapping file (checked now, so a mapping that cannot work
    stops the start) and the Schema Registry client when one is configured."""
    spec = load_inputs(settings)
    registry = None
    if settings.schema_registry_url:
        registry = SchemaRegistry(
            settings.schema_registry_url,
            basic_auth=settings.schema_registry_basic_auth,
            ca=settings.schema_registry_ca,
        )
    return InputDecoder(
        avro=codecs.avro,
        max_bytes=settings.max_event_bytes,
        spec=spec,
        registry=registry,
        metrics=metrics,
    )


async def run_worker(
    settings: Settings,
    role: str = "all",
    *,
    stop: asyncio.Event | None = None,
    on_started: Callable[[int], Awaitable[None] | None] | None = None,
) -> None:
    """Build and run until ``stop`` is set or SIGTERM/SIGINT arrives. ``on_started`` gets the
    bound metrics port (useful with port 0)."""
    worker = build_worker(settings, role)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    await _serve(worker, stop, on_started)


async def _serve(
    worker: Worker,
    stop: asyncio.Event,
    on_started: Callable[[int], Awaitable[None] | None] | None,
) -> None:
    """Serve health and metrics, wait for the table, run the stages; then shut down."""
    settings, follower, producer, stages = (
        worker.settings,
        worker.follower,
        worker.producer,
        worker.stages,
    )
    broker = PeriodicProbe(
        "broker unreachable", broker_probe(producer, worker.topics.deliveries), interval_s=1.0
    )

    def ready() -> tuple[bool, str]:
        if not follower.ready():
            return False, "subscription table catching up"
        if not all(stage.assigned for stage in stages):
            return False, "no partitions assigned"
        for stage in stages:
            if isinstance(stage, Router):
                ok, reason = stage.inputs.health()
                if not ok:
                    return False, reason
        return broker.check()

    health = HealthServer(
        worker.metrics, settings.metrics_port, ready=ready, alive=worker.heartbeat.alive
    )
    await health.start()
    broker.start()
    loop_lag = LoopLagMonitor(worker.metrics)
    loop_lag.start()
    unsettle: Callable[[], None] | None = None
    try:
        if on_started is not None:
            started = on_started(health.port)
            if started is not None:
                await started
        await _wait_for_table(follower, stop)
        # Before the stages: what start-up built, and later what each full collection found
        # alive, stays out of the collector's walks (undone when the stages end: in-process
        # workers in tests).
        unsettle = settle_heap()
        await _run_stages(stages, stop, watch=_watch_table(follower, stop, worker.metrics))
    finally:
        if unsettle is not None:
            unsettle()
        await loop_lag.stop()
        broker.stop()
        _flush(producer, settings)
        follower.stop()
        _close_inputs(stages)
        if worker.sender is not None:
            await worker.sender.close()
        if worker.tracing is not None:
            await asyncio.to_thread(worker.tracing.shutdown)
        await health.stop()


def _close_inputs(stages: list[Router | Dispatcher]) -> None:
    """The Schema Registry client's kept-alive connections go with the router."""
    for stage in stages:
        if isinstance(stage, Router):
            stage.inputs.close()


async def _wait_for_table(follower: TableFollower, stop: asyncio.Event) -> None:
    """No stage starts before the table has caught up: a dispatcher with an empty table would
    dead-letter every task as ``subscription_deleted``. Raises if the follower died."""
    while not follower.ready() and not stop.is_set():
        await asyncio.sleep(0.05)


async def _watch_table(follower: TableFollower, stop: asyncio.Event, metrics: Metrics) -> None:
    """Fails the worker if the table follower dies; publishes subscriptions by status."""
    next_count = 0.0
    while not stop.is_set():
        follower.ready()  # raises once the follower has died
        now = time.monotonic()
        if now >= next_count:
            next_count = now + 5.0
            counts = Counter(sub.status.value for sub in follower.table.index.all())
            metrics.subscriptions({status.value: counts.get(status.value, 0) for status in Status})
        await asyncio.sleep(0.5)


async def _run_stages(
    stages: list[Router | Dispatcher], stop: asyncio.Event, watch: Awaitable[None]
) -> None:
    """Run every stage; if one fails, stop the others and re-raise its error."""
    jobs = [asyncio.create_task(stage.run(stop)) for stage in stages]
    jobs.append(asyncio.ensure_future(watch))
    try:
        done, _ = await asyncio.wait(jobs, return_when=asyncio.FIRST_EXCEPTION)
        for job in done:
            if job.exception() is not None:
                stop.set()
                await asyncio.gather(*jobs, return_exceptions=True)
                raise job.exception()  # type: ignore[misc]
    finally:
        stop.set()
        await asyncio.gather(*jobs, return_exceptions=True)


def _failure_tracker(
    settings: Settings, follower: TableFollower, producer: Producer, codecs: Codecs
) -> FailureTracker:
    """Auto-disabling: the worker writes TOO_MANY_ERRORS back to the subscriptions topic;
    ``subs enable`` (the status back to ACTIVE) resets the count."""
    writer = SubscriptionWriter(settings, producer, codecs.records, secret_box(settings))

    def disable(sub_id: str, reason: str) -> None:
        sub = follower.table.index.get(sub_id)
        if sub is None or sub.status is not Status.ACTIVE:
            return
        log.warning(
            "disabling subscription %s: %s", sub_id, reason, extra={"subscription_id": sub_id}
        )
        writer.put_nowait(
            replace(sub, status=Status.TOO_MANY_ERRORS, status_reason=reason, updated_ms=now_ms())
        )

    tracker = FailureTracker(
        max_failures=settings.disable_after_failures,
        max_failing_ms=settings.disable_after_ms,
        disable=disable,
    )

    def changed(old: Subscription | None, new: Subscription | None) -> None:
        if (
            new is not None
            and new.status is Status.ACTIVE
            and (old is None or old.status is not Status.ACTIVE)
        ):
            tracker.reset(new.id)

    follower.table.on_change(changed)
    return tracker


def _flush(producer: Producer, settings: Settings) -> None:
    remaining = producer.flush(settings.shutdown_timeout_ms / 1000)
    if remaining:
        log.error("%d records were not acknowledged before shutdown", remaining)
