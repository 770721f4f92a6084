"""`test-fire` and `logs` against real receivers and a real worker."""

from __future__ import annotations

import socket
import time

from tests.support.cli import cli_error, cli_json, run_cli
from tests.support.kafka import produce_json
from tests.support.receiver import Receiver, Reply, always, fail_first
from tests.support.subs import SubsWriter
from tests.support.worker import running
from worker.subscriptions.secrets import generate_secret


def test_test_fire_outcomes(settings_factory):
    settings = settings_factory()
    writer = SubsWriter(settings)
    with Receiver() as receiver:
        secret = generate_secret()
        long_url = receiver.endpoint("long", secret, lambda n, b: Reply(body=b"z" * 2000))
        fail_url = receiver.endpoint("fail", secret, always(500))
        hang_url = receiver.endpoint("hang", secret, lambda n, b: Reply(hang=True))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            refused_url = f"http://127.0.0.1:{s.getsockname()[1]}/x"
        long = writer.create("acme", long_url, ["contact.*"], secret=secret)
        fail = writer.create("acme", fail_url, ["*"], secret=secret)
        hang = writer.create("acme", hang_url, ["*"], secret=secret, timeout_ms=1000)
        refused = writer.create("acme", refused_url, ["*"], secret=secret)

        shown = cli_json(settings, "test-fire", long.id)
        assert shown["status"] == 200 and shown["truncated"] and len(shown["body"]) == 500
        assert shown["latency_ms"] >= 0 and shown["event"] == "contact.created"
        full = cli_json(settings, "test-fire", long.id, "--full")
        assert len(full["body"]) == 2000 and not full["truncated"]
        text = run_cli(settings, "test-fire", long.id)
        assert text.returncode == 0 and b"HTTP 200 in" in text.stdout
        got = receiver.received("long")
        assert len(got) == 3 and all(r.verified for r in got)
        assert got[0].json["workspace"] == "acme" and "changes" not in got[0].json

        failed = run_cli(settings, "test-fire", fail.id, "--output", "json")
        assert failed.returncode == 1 and b'"status":500' in failed.stdout

        started = time.monotonic()
        assert "no response within 1s" in cli_error(settings, "test-fire", hang.id)
        assert time.monotonic() - started < 15
        assert "connection failed" in cli_error(settings, "test-fire", refused.id)
        assert "unknown subscription sub_nope" in cli_error(settings, "test-fire", "sub_nope")


def test_logs_show_every_attempt(settings_factory):
    settings = settings_factory(retry_delays="100ms,100ms")
    writer = SubsWriter(settings)
    with Receiver() as receiver:
        secret = generate_secret()
        url = receiver.endpoint("flaky", secret, fail_first(1))
        sub = writer.create("acme", url, ["*"], secret=secret)
        with running(settings):
            produce_json(
                settings.bootstrap_servers,
                settings.input_topics,
                [{"event": "a.created", "workspace": "acme", "id": f"l{i}"} for i in range(3)],
                key=lambda e: "acme",
            )
            receiver.wait_for("flaky", 4, timeout=30)
            deadline = time.monotonic() + 20
            while True:
                views = cli_json(settings, "logs", sub.id, "--since", "10m")
                if len(views) >= 4 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
    assert [(v["event_id"], v["attempt"], v["status"]) for v in views] == [
        ("l0", 1, 500),
        ("l0", 2, 200),
        ("l1", 1, 200),
        ("l2", 1, 200),
    ]
    assert len({v["webhook_id"] for v in views}) == 3
    assert views[0]["outcome"] == "retry" and views[1]["outcome"] == "success"
    assert '"id":"l0"' in views[0]["request_body"]
    assert "unknown subscription sub_nope" in cli_error(settings, "logs", "sub_nope")
