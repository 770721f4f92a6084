"""`demo receiver`, `demo subscribe` and `demo producer` as Docker Compose runs them, but as
subprocesses on this machine: the real CLI, the dev broker, a real worker, real HTTP."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition

from tests.support.cli import cli_error, cli_json
from tests.support.kafka import consume_all
from tests.support.worker import REPO, running, settings_env
from worker.cli.demo import SAMPLE_EVENTS
from worker.config import Settings
from worker.outbound.signing import decode_secret, sign_headers
from worker.subscriptions.secrets import generate_secret


class ReceiverProcess:
    """``webhook-worker demo receiver --port 0`` as a child process; its JSON log lines."""

    def __init__(self, settings: Settings, secret: str, *args: str) -> None:
        env = settings_env(settings)
        env["WEBHOOK_DEMO_SECRET"] = secret
        # A file, not a pipe: the receiver must never block on a full pipe.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "worker",
                "demo",
                "receiver",
                "--port",
                "0",
                "--output",
                "json",
                *args,
            ],
            env=env,
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        first = self.wait_for(lambda lines: bool(lines), 20)
        self.url: str = first[0]["listening"]

    def lines(self) -> list[dict[str, Any]]:
        self._log.seek(0)
        complete = self._log.read().split(b"\n")[:-1]  # the last piece may still be written
        return [orjson.loads(line) for line in complete if line.strip()]

    def deliveries(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if "delivery" in line]

    def wait_for(self, done: Any, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.lines()
            if done(lines):
                return lines
            assert self.proc.poll() is None, f"receiver exited: {self.lines()}"
            time.sleep(0.1)
        raise AssertionError(f"receiver log after {timeout}s: {self.lines()[-5:]}")

    def close(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        code = self.proc.wait(10)
        self._log.close()
        return code


@contextmanager
def receiver_process(settings: Settings, secret: str, *args: str) -> Iterator[ReceiverProcess]:
    receiver = ReceiverProcess(settings, secret, *args)
    try:
        yield receiver
    finally:
        assert receiver.close() == 0, "the receiver does not stop cleanly on SIGTERM"


def test_demo_commands_deliver_verified_events(settings_factory):
    started = time.monotonic()
    settings = settings_factory()
    secret = generate_secret()
    env = {"WEBHOOK_DEMO_SECRET": secret}
    with receiver_process(settings, secret) as receiver:
        subscribe = ("demo", "subscribe", "--url", receiver.url, "--workspace", "demo")
        created = cli_json(settings, *subscribe, env=env)
        assert created["created"] is True and created["url"] == receiver.url
        challenges = [line for line in receiver.lines() if "challenge" in line]
        assert len(challenges) == 1
        assert challenges[0]["signature"] == "verified" and challenges[0]["status"] == 200
        # Idempotent: a restarted stack does not subscribe the receiver twice.
        again = cli_json(settings, *subscribe, env=env)
        assert again == {**created, "created": False}

        with running(settings):
            produced = cli_json(
                settings, "demo", "producer", "--count", "20", "--rate", "40", "--workspace", "demo"
            )
            assert produced["count"] == 20 and produced["topic"] == settings.input_topic_list()[0]
            assert produced["seconds"] >= 19 / 40  # paced, not a burst
            receiver.wait_for(lambda lines: sum("delivery" in x for x in lines) >= 20, 25)
            time.sleep(0.3)  # a duplicate would arrive about now
        deliveries = receiver.deliveries()

    assert len(deliveries) == 20
    assert len({d["webhook_id"] for d in deliveries}) == 20
    assert all(d["signature"] == "verified" and d["status"] == 200 for d in deliveries)
    assert all(d["workspace"] == "demo" for d in deliveries)
    assert {d["event"] for d in deliveries} == set(SAMPLE_EVENTS)
    assert time.monotonic() - started < 40


def test_demo_receiver_fails_on_request_but_never_a_challenge(settings_factory):
    settings = settings_factory()
    secret = generate_secret()
    key = decode_secret(secret)

    def post(url: str, body: bytes, keys: list[bytes]) -> int:
        headers = sign_headers("msg_demo_test", int(time.time()), body, keys)
        return httpx.post(url, content=body, headers=headers, timeout=5).status_code

    with receiver_process(settings, secret, "--fail-rate", "1", "--fail-status", "502") as rcv:
        event = orjson.dumps({"event": "contact.created", "workspace": "demo"})
        assert post(rcv.url, event, [key]) == 502
        assert post(rcv.url + "any/path", event, [key]) == 502
        assert post(rcv.url, orjson.dumps({"challenge": "c1"}), [key]) == 200
        assert post(rcv.url, event, [decode_secret(generate_secret())]) == 401
        assert httpx.get(rcv.url + "healthz", timeout=5).status_code == 200
        lines = rcv.wait_for(lambda lines: len(lines) >= 5, 10)
    assert [line.get("status") for line in lines[1:]] == [502, 502, 200, 401]
    assert [line["signature"] for line in lines[1:]] == ["verified"] * 3 + ["INVALID"]

    assert "WEBHOOK_DEMO_SECRET" in cli_error(settings, "demo", "receiver", "--port", "0")
    bad_rate = cli_error(settings, "demo", "producer", "--rate", "0")
    assert "--rate" in bad_rate


def written(settings: Settings, topic: str) -> bool:
    """Whether ``topic`` holds a record yet (its high watermark moved)."""
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": "probe"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return any(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] > 0
            for p in partitions
        )
    except KafkaException:  # a topic this new may not have a leader yet: not written
        return False
    finally:
        consumer.close()


def test_demo_producer_runs_until_sigterm_and_loses_nothing(settings_factory):
    settings = settings_factory()
    topic = settings.input_topic_list()[0]
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", "demo", "producer", "--rate", "20", "--output", "json"],
        env=settings_env(settings),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out = err = b""
    try:
        deadline = time.monotonic() + 30
        while not written(settings, topic):  # until it is running (SIGTERM during start-up kills)
            assert time.monotonic() < deadline, "the producer wrote nothing within 30 s"
            time.sleep(0.2)
        time.sleep(1)
        assert proc.poll() is None, "a producer without --count stops only when told"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        if proc.stdout is not None and not proc.stdout.closed:
            proc.communicate(timeout=10)  # reap it and close its pipes, even after a failure
    assert proc.returncode == 0, err.decode()
    report = orjson.loads(out)
    assert report["count"] > 0
    assert report["topic"] == topic
    events = consume_all(settings.bootstrap_servers, topic, timeout=60)
    assert len(events) == report["count"]
    decoded = [orjson.loads(e.value) for e in events]
    assert all(e["workspace"] == "demo" and e["event"] in SAMPLE_EVENTS for e in decoded)
