"""The command line against the real broker: success paths, and one-line failures that
write nothing."""

from __future__ import annotations

import subprocess
import sys

import orjson

from tests.support.cli import run_cli
from tests.support.kafka import consume_all
from tests.support.receiver import Receiver, always
from tests.support.worker import REPO


def cli(settings, *args: str, extra_env: dict[str, str] | None = None):
    return run_cli(settings, *args, env=extra_env)


def test_topics_subs_and_events_commands(settings_factory):
    settings = settings_factory()
    ensured = cli(settings, "topics", "ensure", "--partitions", "3", "--output", "json")
    assert ensured.returncode == 0, ensured.stderr
    report = orjson.loads(ensured.stdout)
    assert settings.topic_prefix + "deliveries" in report["ok"] and not report["problems"]

    with Receiver() as receiver:
        # The challenge is signed like a delivery: the receiver verifies it.
        import base64
        import os

        secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        url = receiver.endpoint("hook", secret)
        created = cli(
            settings,
            "subs",
            "create",
            "--workspace",
            "acme",
            "--url",
            url,
            "--events",
            "contact.*,deal.saved",
            "--secret",
            secret,
            "--output",
            "json",
        )
        assert created.returncode == 0, created.stderr
        sub = orjson.loads(created.stdout)
        assert sub["secret"] == secret and sub["id"].startswith("sub_")
        challenge = receiver.received("hook")
        assert len(challenge) == 1 and challenge[0].verified and "challenge" in challenge[0].json

        listed = cli(settings, "subs", "list", "--workspace", "acme", "--output", "json")
        assert listed.returncode == 0, listed.stderr
        views = orjson.loads(listed.stdout)
        assert [v["id"] for v in views] == [sub["id"]]
        # New subscriptions are ordered per key; `ordered` stays for older readers.
        assert (views[0]["ordering"], views[0]["max_in_flight"], views[0]["ordered"]) == (
            "key",
            10,
            True,
        )
        assert secret not in listed.stdout.decode()

        emitted = cli(
            settings,
            "events",
            "emit",
            "--workspace",
            "acme",
            "--event",
            "contact.created",
            "--count",
            "3",
            "--output",
            "json",
        )
        assert emitted.returncode == 0, emitted.stderr
        assert orjson.loads(emitted.stdout)["count"] == 3
        assert len(consume_all(settings.bootstrap_servers, settings.input_topics)) == 3

        deleted = cli(settings, "subs", "delete", sub["id"], "--output", "json")
        assert deleted.returncode == 0, deleted.stderr
        listed = cli(settings, "subs", "list", "--output", "json")
        assert orjson.loads(listed.stdout) == []


def test_failures_are_one_line_and_write_nothing(settings_factory):
    settings = settings_factory()
    strict = {"WEBHOOK_ALLOW_HTTP": "false", "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "false"}
    with Receiver() as receiver:
        failing = receiver.endpoint("failing", "whsec_" + "A" * 43 + "=", always(500))
        cases = [
            (
                [
                    "subs",
                    "create",
                    "--workspace",
                    "a",
                    "--url",
                    "http://example.com/x",
                    "--events",
                    "*",
                ],
                strict,
                "HTTP endpoints are rejected",
            ),
            (
                [
                    "subs",
                    "create",
                    "--workspace",
                    "a",
                    "--url",
                    "https://127.0.0.1/x",
                    "--events",
                    "*",
                ],
                strict,
                "not publicly routable",
            ),
            (
                ["subs", "create", "--workspace", "a", "--url", "not a url", "--events", "*"],
                None,
                "malformed URL",
            ),
            (
                [
                    "subs",
                    "create",
                    "--workspace",
                    "a",
                    "--url",
                    "https://example.com/x",
                    "--events",
                    "a.*.b",
                    "--skip-challenge",
                ],
                strict,
                "malformed event pattern",
            ),
            (
                ["subs", "create", "--workspace", "a", "--url", failing, "--events", "*"],
                None,
                "answered HTTP 500",
            ),
            (["subs", "show", "sub_nope"], None, "unknown subscription sub_nope"),
            (["subs", "delete", "sub_nope"], None, "unknown subscription sub_nope"),
            (
                ["events", "emit", "--workspace", "a", "--event", "x.y", "--record", "[1"],
                None,
                "--record is not valid JSON",
            ),
        ]
        for args, env, message in cases:
            result = cli(settings, *args, extra_env=env)
            err = result.stderr.decode().strip()
            assert result.returncode != 0, args
            assert message in err, (args, err)
            assert len(err.splitlines()) == 1, err
    assert consume_all(settings.bootstrap_servers, settings.topic_prefix + "subscriptions") == []
    assert consume_all(settings.bootstrap_servers, settings.input_topics) == []


def test_run_without_bootstrap_servers_fails_clearly():
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("KAFKA_")}
    result = subprocess.run(
        [sys.executable, "-m", "worker", "run"], env=env, cwd=REPO, capture_output=True, timeout=30
    )
    assert result.returncode != 0
    assert "KAFKA_BOOTSTRAP_SERVERS is not set" in result.stderr.decode()
