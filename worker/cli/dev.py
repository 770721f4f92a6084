"""``webhook-worker dev``: the whole pipeline on one machine, with a demo.

Without KAFKA_BOOTSTRAP_SERVERS it starts a local broker on free 127.0.0.1 ports: one Apache
Kafka KRaft node where Java 17+ and Maven are present (its jars fetched from Maven Central on
the first run), else the embedded Tansu (memory only); the first line says which.
It then ensures the topics, starts a demo receiver that verifies every signature, creates a
demo subscription, emits sample events, runs the worker and the management API (on
WEBHOOK_API_PORT, or a free port when that one is busy), prints a token of the demo workspace
and a portal link, then each delivery as it arrives, until Ctrl-C (or ``--exit-after N``
deliveries); then it stops all it started.
Without WEBHOOK_EVENT_TYPES it uses the example catalogue shipped with the package.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import socket
import sys
import tempfile
from collections.abc import Iterator

import orjson

from worker.api.server import run_api
from worker.app import run_worker
from worker.catalogue import example_catalogue_path
from worker.cli.common import settings_from
from worker.cli.demo import DemoReceiver, sample_event
from worker.cli.subs import create_subscription
from worker.codec.avro import AvroCodec
from worker.config import Settings, parse_retry_delays
from worker.kafka.admin import ensure_topics
from worker.kafka.clients import make_admin, make_producer
from worker.kafka.devbroker import DevBroker, tansu_version
from worker.kafka.kafkabroker import KAFKA_VERSION, KafkaCluster
from worker.kafka.kafkajars import java_and_maven
from worker.kafka.topics import Topics
from worker.kafka.writes import produce
from worker.portal.links import create_portal_link
from worker.subscriptions.edit import Changes
from worker.tokens.registry import open_registry
from worker.tokens.writer import TokenWriter

__all__ = ["run_dev"]


@contextlib.contextmanager
def _broker(settings: Settings, choice: str, output: str) -> Iterator[str]:
    if settings.bootstrap_servers:
        _say(output, f"broker: {settings.bootstrap_servers} (KAFKA_BOOTSTRAP_SERVERS)")
        yield settings.bootstrap_servers
        return
    if choice == "kafka" or (choice == "auto" and java_and_maven()):
        _say(output, f"starting Apache Kafka {KAFKA_VERSION} (one local KRaft node)...")
        with KafkaCluster(nodes=1).start(progress=lambda line: _say(output, line)) as cluster:
            _say(output, f"broker: Apache Kafka {KAFKA_VERSION} on {cluster.bootstrap}")
            yield cluster.bootstrap
        return
    with DevBroker() as broker:
        why = "" if choice == "tansu" else "; Java 17+ and Maven run Apache Kafka instead"
        _say(output, f"broker: Tansu {tansu_version()} (embedded, memory only{why}) "
                     f"on {broker.bootstrap}")  # fmt: skip
        yield broker.bootstrap


async def run_dev(args: argparse.Namespace) -> int:
    base = settings_from(
        args,
        allow_http=True,
        allow_private_networks=True,
        metrics_port=args.metrics_port,
    )
    base = base.with_overrides(event_types=base.event_types or str(example_catalogue_path()))
    broker = _broker(base, getattr(args, "broker", "auto"), args.output)
    with broker as bootstrap, tempfile.TemporaryDirectory(prefix="ww-api-") as data_dir:
        settings = base.with_overrides(
            bootstrap_servers=bootstrap,
            retry_delays_ms=parse_retry_delays("1s,5s,30s")
            if base.bootstrap_servers is None
            else None,
        )
        ensure_topics(
            make_admin(settings),
            Topics.from_settings(settings),
            partitions=3,
            replication_factor=settings.replication_factor,
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
            api_port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            api = asyncio.create_task(
                run_api(
                    _api_settings(settings, data_dir),
                    stop=stop,
                    on_started=api_port.set_result,
                    host="127.0.0.1",
                )
            )
            worker = asyncio.create_task(run_worker(settings, "all", stop=stop))
            await _announce_api(args.output, settings, api_port, api)
            if args.exit_after:
                while receiver.count < args.exit_after and not worker.done():
                    receiver.arrived.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(receiver.arrived.wait(), 1)
                stop.set()
            await worker
            stop.set()
            await api
        finally:
            await receiver.stop()
            # The worker's Kafka clients sit in reference cycles (callbacks): free them now,
            # while the broker still runs, not at exit, when librdkafka would log a disconnect.
            gc.collect()
    return 0


def _api_settings(settings: Settings, data_dir: str) -> Settings:
    """The API of this dev run: its index in a fresh directory (the embedded broker starts
    empty each time), on WEBHOOK_API_PORT unless that port is taken."""
    port = settings.api_port
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            port = 0
    return settings.with_overrides(api_data_dir=data_dir, api_port=port)


async def _announce_api(
    output: str, settings: Settings, port: asyncio.Future[int], api: asyncio.Task[None]
) -> None:
    """Wait for the API to listen, make a token of the demo workspace and say how to use it."""
    while not port.done():
        if api.done():
            await api  # raises why it stopped
            raise RuntimeError("the management API stopped before it listened")
        await asyncio.sleep(0.05)
    bound = await port
    token_id, token = await asyncio.to_thread(_demo_token, settings)
    url = f"http://127.0.0.1:{bound}"
    portal, _expires = create_portal_link(settings, "demo", token_id, url)
    if output == "json":
        document = {"api": url, "token": token, "portal": portal}
        sys.stdout.write(orjson.dumps(document).decode() + "\n")
        sys.stdout.flush()
        return
    _say(output, f"management API: {url} (token of workspace demo, shown once: {token})")
    _say(
        output,
        f"  curl -H 'Authorization: Bearer {token}' {url}/v1/workspaces/demo/subscriptions",
    )
    _say(output, f"portal (open within the hour, once): {portal}")


def _demo_token(settings: Settings) -> tuple[str, str]:
    """A token of the demo workspace: (its id, the token)."""
    avro = AvroCodec()
    registry = open_registry(settings, avro)
    try:
        writer = TokenWriter(settings, make_producer(settings), avro, registry)
        record, token = writer.create(workspace="demo", admin=False, name="dev")
        return record.id, token
    finally:
        registry.stop()


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
