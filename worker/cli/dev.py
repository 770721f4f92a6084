"""``webhook-worker dev``: the whole pipeline on one machine, with a demo.

Without KAFKA_BOOTSTRAP_SERVERS it starts the embedded Tansu broker on a free 127.0.0.1 port.
It then ensures the topics, starts a demo receiver that verifies every signature, creates a
demo subscription, emits sample events, runs the worker, and prints each delivery as it
arrives, until Ctrl-C (or ``--exit-after N`` deliveries); then it stops all it started.
Without WEBHOOK_EVENT_TYPES it uses the example catalogue shipped with the package.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import sys
from collections.abc import Iterator

import orjson

from worker.app import run_worker
from worker.catalogue import example_catalogue_path
from worker.cli.common import settings_from
from worker.cli.demo import DemoReceiver, sample_event
from worker.cli.subs import create_subscription
from worker.config import Settings, parse_retry_delays
from worker.kafka.admin import ensure_topics
from worker.kafka.clients import make_admin, make_producer
from worker.kafka.devbroker import DevBroker
from worker.kafka.topics import Topics
from worker.kafka.writes import produce
from worker.subscriptions.edit import Changes

__all__ = ["run_dev"]


@contextlib.contextmanager
def _broker(settings: Settings) -> Iterator[str]:
    if settings.bootstrap_servers:
        yield settings.bootstrap_servers
        return
    with DevBroker() as broker:
        yield broker.bootstrap


async def run_dev(args: argparse.Namespace) -> int:
    base = settings_from(
        args,
        allow_http=True,
        allow_private_networks=True,
        metrics_port=args.metrics_port,
    )
    base = base.with_overrides(event_types=base.event_types or str(example_catalogue_path()))
    with _broker(base) as bootstrap:
        settings = base.with_overrides(
            bootstrap_servers=bootstrap,
            retry_delays_ms=parse_retry_delays("1s,5s,30s")
            if base.bootstrap_servers is None
            else None,
        )
        _say(args.output, f"broker: {bootstrap}")
        ensure_topics(
            make_admin(settings),
            Topics.from_settings(settings),
            partitions=3,
            replication_factor=1,
            input_topics=settings.input_topic_list(),
        )
        secret = "whsec_" + base64.b64encode(b"webhook-worker-dev-demo-secret!!").decode()
        receiver = DemoReceiver(secret, args.output)
        url = await receiver.start()
        try:
            sub = await asyncio.to_thread(
                create_subscription,
                settings,
                workspace="demo",
                changes=Changes(url=url, events=("*",), name="demo receiver"),
                secret=secret,
            )
            _say(args.output, f"subscription {sub.id} -> {url} (challenge passed)")
            _emit_samples(settings, args.events)
            _say(
                args.output,
                f"emitted {args.events} sample events; deliveries follow (Ctrl-C to stop)",
            )
            stop = asyncio.Event()
            worker = asyncio.create_task(run_worker(settings, "all", stop=stop))
            if args.exit_after:
                while receiver.count < args.exit_after and not worker.done():
                    receiver.arrived.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(receiver.arrived.wait(), 1)
                stop.set()
            await worker
        finally:
            await receiver.stop()
            # The worker's Kafka clients sit in reference cycles (callbacks): free them now,
            # while the broker still runs, not at exit, when librdkafka would log a disconnect.
            gc.collect()
    return 0


def _emit_samples(settings: Settings, count: int) -> None:
    producer = make_producer(settings)
    topic = settings.input_topic_list()[0]
    for i in range(count):
        produce(producer, topic, orjson.dumps(sample_event(i)), b"demo")
    producer.flush(30)


def _say(output: str, text: str) -> None:
    if output != "json":
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
