"""The ``webhook-worker api`` process: builds what the routes need (the only place in the API
that does) and serves them with uvicorn on the command's event loop.

Start-up: follow the subscriptions, api-tokens and idempotency topics and index attempts,
dlq and redrives; ``/readyz`` answers 200 once all have caught up. Shutdown (SIGTERM or
``stop``): stop accepting, finish requests in flight, flush the producer, stop followers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator

import uvicorn
from fastapi import FastAPI

from worker.api.app import build_app
from worker.api.context import ApiContext
from worker.api.idempotency import IdempotencyStore
from worker.api.ratelimit import RateLimiter
from worker.catalogue import load_catalogue
from worker.components import Codecs, open_table, secret_box
from worker.config import Settings
from worker.deliverylog.follower import open_log
from worker.kafka.clients import make_consumer, make_producer
from worker.kafka.compacted import CompactedFollower
from worker.kafka.probe import broker_probe
from worker.kafka.topics import Topics
from worker.observability.api_metrics import ApiMetrics
from worker.observability.health import PeriodicProbe
from worker.observability.tracing import Tracing, open_tracing
from worker.outbound.destinations import DestinationPolicy
from worker.portal.build import open_portal
from worker.sources.runtime import open_incoming
from worker.subscriptions.challenge import RecentChallenges
from worker.subscriptions.service import SubscriptionService
from worker.subscriptions.store import SubscriptionWriter
from worker.tokens.registry import open_registry

__all__ = ["run_api"]

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handling: SIGTERM sets ``stop`` (as for the
    worker), and the process exits 0 once drained instead of re-raising the signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def run_api(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    on_started: Callable[[int], Awaitable[None] | None] | None = None,
    host: str = "0.0.0.0",
) -> None:
    """Serve until ``stop`` is set or SIGTERM/SIGINT arrives; ``on_started`` gets the bound
    port (useful with ``WEBHOOK_API_PORT=0``)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    settings.to_librdkafka()
    codecs = Codecs.load()
    topics = Topics.from_settings(settings)
    catalogue = load_catalogue(settings)
    table = open_table(settings, codecs)
    tokens = open_registry(settings, codecs.avro)
    delivery_log, log_follower = open_log(settings, codecs.records)
    producer = make_producer(settings)
    idempotency = IdempotencyStore(producer, topics.idempotency, codecs.avro, secret_box(settings))
    answers = CompactedFollower(
        make_consumer(settings, None, **{"enable.partition.eof": "true"}),
        topics.idempotency,
        idempotency.apply,
        "idempotency",
    )
    answers.start()
    portal, spent_links = open_portal(settings, producer, codecs.avro, tokens)
    metrics = ApiMetrics()
    tracing = open_tracing(settings, metrics.spans_dropped)
    # Not ready while the cluster is unreachable: writes would fail, reads go stale.
    broker = PeriodicProbe("broker unreachable", broker_probe(producer, topics.subscriptions), 1.0)
    incoming = open_incoming(settings, codecs.avro, secret_box(settings), metrics)

    def ready() -> bool:
        caught_up = (
            incoming.ready()
            and table.ready()
            and tokens.ready()
            and log_follower.ready()
            and answers.caught_up.is_set()
            and answers.error is None
            and spent_links.caught_up.is_set()
            and spent_links.error is None
            and broker.check()[0]
        )
        metrics.index_ready.set(1 if log_follower.ready() else 0)
        return caught_up

    context = ApiContext(
        settings=settings,
        service=SubscriptionService(
            settings,
            index=table.table.index,
            writer=SubscriptionWriter(settings, producer, codecs.records, secret_box(settings)),
            catalogue=catalogue,
            challenges=RecentChallenges(),
            applied=table.wait_applied,
        ),
        tokens=tokens,
        log=delivery_log,
        log_lag=log_follower.lag,
        catalogue=catalogue,
        idempotency=idempotency,
        limiter=RateLimiter(settings.api_rate_limit, settings.api_rate_burst),
        metrics=metrics,
        producer=producer,
        codec=codecs.records,
        topics=topics,
        destinations=DestinationPolicy.from_settings(settings),
        ready=ready,
        portal=portal,
        sources=incoming.service,
        intake=incoming.intake,
    )
    config = uvicorn.Config(
        _traced(build_app(context), tracing),
        host=host,
        port=settings.api_port,
        loop="none",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        proxy_headers=False,
    )
    server = _Server(config)
    broker.start()
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                await serving  # raises the bind error
                raise RuntimeError("the API server stopped before it started")
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        log.info("management API listening on %s:%d", host, port)
        if on_started is not None:
            started = on_started(port)
            if started is not None:
                await started
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
    finally:
        server.should_exit = True
        broker.stop()
        with contextlib.suppress(Exception):
            await serving
        producer.flush(10)
        await incoming.stop()
        answers.stop()
        spent_links.stop()
        log_follower.stop()
        delivery_log.store.close()
        tokens.stop()
        table.stop()
        if tracing is not None:
            await asyncio.to_thread(tracing.shutdown)


def _traced(app: FastAPI, tracing: Tracing | None) -> FastAPI:
    """Every request gets a server span (``/in/{source}`` included) when tracing is on; the
    caller's ``traceparent`` is its parent. Probes and scrapes are not traced."""
    if tracing is not None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=tracing.provider, excluded_urls="/healthz,/readyz,/metrics"
        )
    return app
