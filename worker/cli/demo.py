"""``demo``: the pieces of a live demo, each its own process (as Docker Compose runs them).

``demo receiver`` is an HTTP endpoint that verifies every Standard Webhooks signature, answers
challenges, logs one JSON line per request and fails a share of deliveries on request (a livelier
dashboard). ``demo subscribe`` creates the demo subscription once (it is idempotent, so a
restarted stack does not fan every event out twice). ``demo producer`` emits sample events at a
steady rate. ``webhook-worker dev`` uses the same receiver and sample events in one process.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import random
import signal
import threading
import time
from typing import Any

import orjson
from aiohttp import web
from confluent_kafka import KafkaError, Message

from worker.cli.common import CommandError, emit, settings_from
from worker.cli.context import load_table
from worker.cli.events import build_event
from worker.cli.subs import create_subscription
from worker.config import Settings
from worker.kafka.clients import make_producer
from worker.kafka.writes import produce
from worker.outbound.signing import decode_secret
from worker.subscriptions.edit import Changes, split_list
from worker.subscriptions.model import Status

__all__ = ["SAMPLE_EVENTS", "DemoReceiver", "register", "sample_event"]

SAMPLE_EVENTS = ("contact.created", "contact.updated", "deal.updated", "incident.raised")
TOLERANCE_S = 300  # Standard Webhooks' replay window for webhook-timestamp
PROGRESS_EVERY_S = 10.0


def sample_event(i: int, workspace: str = "demo") -> dict[str, Any]:
    """The ``i``-th sample event: the types cycle, records ``r0``..``r4`` repeat."""
    event = SAMPLE_EVENTS[i % len(SAMPLE_EVENTS)]
    return build_event(
        workspace,
        event,
        entity=event.split(".")[0],
        record={"id": f"r{i % 5}", "name": f"Record {i % 5}"},
        changes={"stage": {"old": "a", "new": "b"}} if event.endswith("updated") else None,
    )


class DemoReceiver:
    """A tiny webhook receiver: verifies Standard Webhooks signatures, answers challenges,
    logs each delivery, and answers ``fail_status`` to a ``fail_rate`` share of them."""

    def __init__(
        self,
        secret: str,
        output: str,
        *,
        fail_rate: float = 0.0,
        fail_status: int = 503,
        seed: int | None = None,
    ) -> None:
        self._key = decode_secret(secret)
        self._output = output
        self._fail_rate = fail_rate
        self._fail_status = fail_status
        self._rng = random.Random(seed)
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
        try:
            data = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            data = {}
        signature = "verified" if ok else "INVALID"
        if "challenge" in data:
            # Never failed on purpose: a challenge decides whether the subscription exists.
            status = 200 if ok else 401
            self._log({"challenge": data["challenge"], "signature": signature, "status": status})
            return web.json_response({"challenge": data["challenge"]}, status=status)
        status = 200
        if not ok:
            status = 401
        elif self._fail_rate and self._rng.random() < self._fail_rate:
            status = self._fail_status
        record = data.get("record")
        self.count += 1
        self.arrived.set()
        self._log(
            {
                "delivery": self.count,
                "webhook_id": headers.get("webhook-id"),
                "event": data.get("event"),
                "workspace": data.get("workspace"),
                "record": record.get("id") if isinstance(record, dict) else None,
                "signature": signature,
                "status": status,
            }
        )
        text = "ok" if status == 200 else "bad signature" if not ok else "failing on purpose"
        return web.Response(status=status, text=text)

    def _log(self, line: dict[str, Any]) -> None:
        emit(self._output, line, "  ".join(f"{k}={v}" for k, v in line.items()))

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen (any POST path is an endpoint; GET /healthz answers 200); the base URL."""
        app = web.Application()
        app.router.add_get("/healthz", _healthz)
        app.router.add_post("/{path:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return f"http://{host}:{self.port}/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def _healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("demo", help="demo receiver, subscription and producer")
    actions = group.add_subparsers(dest="action", required=True)
    secret_help = "whsec_... the demo subscription's secret (WEBHOOK_DEMO_SECRET)"

    receiver = actions.add_parser(
        "receiver", parents=[common], help="a receiver that verifies signatures and logs"
    )
    receiver.add_argument("--host", default="127.0.0.1")
    receiver.add_argument("--port", type=int, default=8080, help="0: any free port")
    receiver.add_argument("--secret", default=None, help=secret_help)
    receiver.add_argument(
        "--fail-rate",
        dest="fail_rate",
        type=float,
        default=0.0,
        help="share of deliveries answered --fail-status (0..1)",
    )
    receiver.add_argument("--fail-status", dest="fail_status", type=int, default=503)
    # Not set_defaults(output=...): the --output action is shared by every command through
    # the common parent, so changing its default here would change it for all of them.
    receiver.set_defaults(handler=_receiver)

    subscribe = actions.add_parser(
        "subscribe", parents=[common], help="create the demo subscription unless it exists"
    )
    subscribe.add_argument("--url", required=True)
    subscribe.add_argument("--workspace", default="demo")
    subscribe.add_argument("--events", default="*")
    subscribe.add_argument("--secret", default=None, help=secret_help)
    subscribe.set_defaults(handler=_subscribe)

    producer = actions.add_parser(
        "producer", parents=[common], help="emit sample events at a steady rate"
    )
    producer.add_argument("--workspace", default="demo")
    producer.add_argument("--rate", type=float, default=5.0, help="events per second")
    producer.add_argument("--count", type=int, default=0, help="0: until stopped")
    producer.add_argument("--topic", default=None, help="default: the first input topic")
    producer.set_defaults(handler=_producer)


def _secret(args: argparse.Namespace, settings: Settings) -> str:
    secret: str | None = args.secret or settings.demo_secret
    if not secret:
        raise CommandError("pass --secret or set WEBHOOK_DEMO_SECRET")
    if not secret.startswith("whsec_"):
        raise CommandError("secrets look like whsec_<base64>")
    try:
        decode_secret(secret)
    except ValueError:
        raise CommandError("the secret is not whsec_ followed by base64") from None
    return secret


def _receiver(args: argparse.Namespace) -> int:
    if not 0.0 <= args.fail_rate <= 1.0:
        raise CommandError("--fail-rate must be between 0 and 1")
    if not 100 <= args.fail_status <= 599:
        raise CommandError("--fail-status must be an HTTP status")
    receiver = DemoReceiver(
        _secret(args, settings_from(args)),
        args.output,
        fail_rate=args.fail_rate,
        fail_status=args.fail_status,
    )
    asyncio.run(_serve(receiver, args.host, args.port, args.output))
    return 0


async def _serve(receiver: DemoReceiver, host: str, port: int, output: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        url = await receiver.start(host, port)
    except OSError as exc:
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    try:
        emit(output, {"listening": url}, f"demo receiver listening on {url}")
        await stop.wait()
    finally:
        await receiver.stop()


def _subscribe(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    secret = _secret(args, settings)
    follower = load_table(settings)
    try:
        existing = [
            s
            for s in follower.table.index.by_workspace(args.workspace)
            if s.url == args.url
            and s.status is Status.ACTIVE
            and any(entry.secret == secret for entry in s.secrets)
        ]
    finally:
        follower.stop()
    if existing:
        sub, created = existing[0], False
    else:
        sub = create_subscription(
            settings,
            workspace=args.workspace,
            changes=Changes(url=args.url, events=split_list(args.events), name="demo receiver"),
            secret=secret,
        )
        created = True
    verb = "created" if created else "already exists:"
    emit(
        args.output,
        {"id": sub.id, "workspace": sub.workspace, "url": sub.url, "created": created},
        f"{verb} {sub.id} -> {sub.url}",
    )
    return 0


def _producer(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.rate <= 0:
        raise CommandError("--rate must be above 0")
    if args.count < 0:
        raise CommandError("--count must be 0 (until stopped) or more")
    topic = args.topic or settings.input_topic_list()[0]
    if topic.startswith("^"):
        raise CommandError("WEBHOOK_INPUT_TOPICS is a pattern: pass --topic")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    errors: list[str] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(str(err))

    producer = make_producer(settings)
    start = last_progress = time.monotonic()
    sent = 0
    while not stop.is_set() and not errors and (args.count == 0 or sent < args.count):
        # Paced against the start, so a slow produce() does not lower the rate.
        if stop.wait(max(0.0, start + sent / args.rate - time.monotonic())):
            break
        data = sample_event(sent, args.workspace)
        produce(producer, topic, orjson.dumps(data), data["record"]["id"].encode(), delivered)
        producer.poll(0)
        sent += 1
        if args.output != "json" and time.monotonic() - last_progress >= PROGRESS_EVERY_S:
            last_progress = time.monotonic()
            emit(args.output, None, f"emitted {sent} events to {topic}")
    unsent = producer.flush(30)
    if unsent or errors:
        raise CommandError(f"could not write to {topic}: {errors[:1] or 'timed out'}")
    emit(
        args.output,
        {"topic": topic, "count": sent, "seconds": round(time.monotonic() - start, 3)},
        f"emitted {sent} event(s) to {topic}",
    )
    return 0
