"""``webhook-worker dev``: the whole pipeline on one machine, with a demo.

Without KAFKA_BOOTSTRAP_SERVERS it starts the embedded Tansu broker on a free 127.0.0.1 port.
It then ensures the topics, starts a demo receiver that verifies every signature, creates a
demo subscription, emits sample events, runs the worker, and prints each delivery as it
arrives, until Ctrl-C (or ``--exit-after N`` deliveries); then it stops all it started.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import sys
import time
from collections.abc import Iterator

import orjson
from aiohttp import web

from worker.app import run_worker
from worker.cli.common import emit, settings_from
from worker.cli.subs import create_subscription
from worker.config import Settings, parse_retry_delays
from worker.dispatch.signing import decode_secret
from worker.kafka.admin import ensure_topics
from worker.kafka.clients import make_admin, make_producer
from worker.kafka.devbroker import DevBroker
from worker.kafka.topics import Topics
from worker.kafka.writes import produce
from worker.subscriptions.edit import Changes

__all__ = ["run_dev"]

SAMPLE_EVENTS = ("contact.created", "contact.updated", "deal.updated", "incident.raised")
TOLERANCE_S = 300


class DemoReceiver:
    """A tiny webhook receiver that verifies Standard Webhooks signatures and prints them."""

    def __init__(self, secret: str, output: str) -> None:
        self._key = decode_secret(secret)
        self._output = output
        self.count = 0
        self.arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    def verify(self, headers: dict[str, str], body: bytes) -> bool:
        msg_id = headers.get("webhook-id", "")
        stamp = headers.get("webhook-timestamp", "0")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > TOLERANCE_S:
            return False
        expected = base64.b64encode(
            hmac.digest(self._key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256)
        ).decode()
        offered = [s.split(",", 1)[-1] for s in headers.get("webhook-signature", "").split()]
        return any(hmac.compare_digest(expected, sig) for sig in offered)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        ok = self.verify(headers, body)
        data = orjson.loads(body) if body else {}
        if "challenge" not in data:
            self.count += 1
            self.arrived.set()
            line = {
                "delivery": self.count,
                "webhook_id": headers.get("webhook-id"),
                "event": data.get("event"),
                "record": (data.get("record") or {}).get("id"),
                "signature": "verified" if ok else "INVALID",
            }
            emit(self._output, line, "  ".join(f"{k}={v}" for k, v in line.items()))
        return web.Response(status=200 if ok else 401, text="ok" if ok else "bad signature")

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hooks", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return f"http://127.0.0.1:{self.port}/hooks"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


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
                changes=Changes(url=url, events="*", name="demo receiver"),
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
    return 0


def _emit_samples(settings: Settings, count: int) -> None:
    from worker.cli.events import build_event

    producer = make_producer(settings)
    topic = settings.input_topic_list()[0]
    for i in range(count):
        event = SAMPLE_EVENTS[i % len(SAMPLE_EVENTS)]
        data = build_event(
            "demo",
            event,
            entity=event.split(".")[0],
            record={"id": f"r{i % 5}", "name": f"Record {i % 5}"},
            changes={"stage": {"old": "a", "new": "b"}} if event.endswith("updated") else None,
        )
        produce(producer, topic, orjson.dumps(data), b"demo")
    producer.flush(30)


def _say(output: str, text: str) -> None:
    if output != "json":
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
