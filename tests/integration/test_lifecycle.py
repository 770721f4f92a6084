"""Subscription lifecycle through the real CLI and a real worker: auto-disable and enable,
secret rotation with a grace period, event selection, challenge outcomes."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import orjson
from standardwebhooks.webhooks import Webhook

from tests.support.cli import cli_error, cli_json
from tests.support.kafka import consume_all, produce_json
from tests.support.receiver import Receiver, Reply, always
from tests.support.worker import REPO, running, settings_env
from worker.codec.avro import AvroCodec
from worker.codec.records import RecordCodec
from worker.subscriptions.secrets import SecretBox, generate_secret

CODEC = RecordCodec(AvroCodec())


cli = cli_json
cli_fails = cli_error


def create_sub(settings, url: str, secret: str, *flags: str) -> dict:
    """``subs create`` in workspace acme for every event, without a challenge."""
    return cli(
        settings,
        "subs",
        "create",
        "--workspace",
        "acme",
        "--url",
        url,
        "--events",
        "*",
        "--secret",
        secret,
        "--skip-challenge",
        *flags,
    )


def emit(settings, events: list[dict]) -> None:
    produce_json(
        settings.bootstrap_servers, settings.input_topics, events, key=lambda e: e["workspace"]
    )


def status_of(settings, sub_id: str) -> str:
    return cli(settings, "subs", "show", sub_id)["status"]  # type: ignore[index]


def wait_status(settings, sub_id: str, status: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while status_of(settings, sub_id) != status:
        assert time.monotonic() < deadline, f"{sub_id} never became {status}"
        time.sleep(0.5)


def test_too_many_errors_disables_then_enable_resumes(settings_factory):
    settings = settings_factory(retry_delays="100ms", disable_after_failures=4)
    with Receiver() as receiver:
        healthy = [False]
        secret = generate_secret()
        url = receiver.endpoint("flaky", secret, lambda n, b: Reply(200 if healthy[0] else 500))
        sub = create_sub(settings, url, secret, "--unordered")
        with running(settings):
            emit(
                settings,
                [{"event": "a.created", "workspace": "acme", "id": f"f{i}"} for i in range(2)],
            )
            receiver.wait_for("flaky", 4, timeout=30)
            wait_status(settings, sub["id"], "TOO_MANY_ERRORS")
            before = len(receiver.received("flaky"))
            emit(
                settings,
                [{"event": "a.created", "workspace": "acme", "id": f"d{i}"} for i in range(3)],
            )
            deadline = time.monotonic() + 20
            letters: list = []
            while time.monotonic() < deadline:
                letters = [
                    CODEC.decode_dead_letter(m.value)
                    for m in consume_all(settings.bootstrap_servers, settings.topic_prefix + "dlq")
                ]
                if sum(1 for d in letters if d.reason == "endpoint_disabled") >= 3:
                    break
                time.sleep(0.3)
            disabled = {d.task.event_id for d in letters if d.reason == "endpoint_disabled"}
            assert {"d0", "d1", "d2"} <= disabled
            assert len(receiver.received("flaky")) == before  # it stopped receiving
            healthy[0] = True
            cli(settings, "subs", "enable", sub["id"])
            wait_status(settings, sub["id"], "ACTIVE")
            time.sleep(1.5)  # the worker's table follows the topic
            emit(settings, [{"event": "a.created", "workspace": "acme", "id": "after"}])
            got = receiver.wait_for_ids("flaky", {"after"}, timeout=30)
    assert any(r.json["id"] == "after" and r.status_sent == 200 for r in got)


def test_410_gone_disables_at_once(settings_factory):
    settings = settings_factory(retry_delays="100ms,100ms")
    with Receiver() as receiver:
        secret = generate_secret()
        url = receiver.endpoint("gone", secret, always(410))
        sub = create_sub(settings, url, secret)
        with running(settings):
            emit(settings, [{"event": "a.created", "workspace": "acme", "id": "g1"}])
            receiver.wait_for("gone", 1, timeout=30)
            wait_status(settings, sub["id"], "TOO_MANY_ERRORS")
    assert len(receiver.received("gone")) == 1


def test_roll_secret_signs_with_both_during_grace_then_only_new(settings_factory):
    key = SecretBox.generate_key()
    settings = settings_factory(secrets_key=key)
    with Receiver() as receiver:
        old = generate_secret()
        url = receiver.endpoint("rot", old)
        sub = create_sub(settings, url, old)
        with running(settings):
            rolled = cli(
                settings,
                "subs",
                "roll-secret",
                sub["id"],
                "--grace",
                "6s",
                env={"WEBHOOK_SECRETS_KEY": key},
            )
            rolled_at = time.monotonic()
            new = rolled["secret"]
            assert new != old and new.startswith("whsec_")
            time.sleep(1)  # the worker's table follows the topic
            emit(settings, [{"event": "a.created", "workspace": "acme", "id": "during"}])
            during = receiver.wait_for("rot", 1, timeout=30)[0]
            assert time.monotonic() - rolled_at < 6, "too slow to test the grace period"
            time.sleep(max(0.0, 6.5 - (time.monotonic() - rolled_at)))
            emit(settings, [{"event": "a.created", "workspace": "acme", "id": "after"}])
            after = receiver.wait_for("rot", 2, timeout=30)[1]
    Webhook(old).verify(during.body, during.headers)
    Webhook(new).verify(during.body, during.headers)
    Webhook(new).verify(after.body, after.headers)
    assert len(after.headers["webhook-signature"].split()) == 1
    try:
        Webhook(old).verify(after.body, after.headers)
    except Exception:
        pass
    else:
        raise AssertionError("the old secret still verifies after the grace period")
    raw = b"".join(
        m.value or b""
        for m in consume_all(settings.bootstrap_servers, settings.topic_prefix + "subscriptions")
    )
    for secret in (old, new):
        assert secret.encode() not in raw
        assert secret.split("_", 1)[1].encode() not in raw
    assert b"enc:v1:" in raw


def test_selection_filters_entity_saved_fields_and_changes(settings_factory):
    settings = settings_factory()
    with Receiver() as receiver:
        subs = {}
        for name, flags in {
            "won": ["--events", "deal.updated", "--filter", "changes.stage.new=closed_won"],
            "deals": ["--events", "*", "--entity", "deal"],
            "saved": ["--events", "contact.saved"],
            "fields": ["--events", "contact.*", "--fields", "name"],
            "either": ["--events", "*", "--filter", "record.stage=a|b", "--filter", "record.x?"],
        }.items():
            secret = generate_secret()
            url = receiver.endpoint(name, secret)
            subs[name] = cli(
                settings,
                "subs",
                "create",
                "--workspace",
                "acme",
                "--url",
                url,
                "--secret",
                secret,
                "--skip-challenge",
                *flags,
            )
        events = [
            {
                "id": "1",
                "event": "deal.updated",
                "workspace": "acme",
                "entity": "deal",
                "changes": {"stage": {"old": "x", "new": "closed_won"}},
            },
            {
                "id": "2",
                "event": "deal.updated",
                "workspace": "acme",
                "entity": "deal",
                "changes": {"stage": {"old": "x", "new": "lost"}},
            },
            {
                "id": "3",
                "event": "contact.created",
                "workspace": "acme",
                "entity": "contact",
                "record": {"id": "c", "name": "Jane", "email": "j@x"},
                "changes": {"name": {"old": None, "new": "Jane"}},
            },
            {
                "id": "4",
                "event": "contact.updated",
                "workspace": "acme",
                "entity": "contact",
                "record": {"id": "c", "name": "Jane", "email": "j@x", "stage": "b", "x": 0},
                "changes": {"email": {"old": "a", "new": "j@x"}},
            },
            {
                "id": "5",
                "event": "contact.deleted",
                "workspace": "acme",
                "entity": "contact",
                "record": {"id": "c", "stage": "a"},
            },
        ]
        with running(settings):
            emit(settings, events)
            receiver.wait_for("won", 1, timeout=30)
            receiver.wait_for("deals", 2, timeout=30)
            receiver.wait_for("saved", 2, timeout=30)
            receiver.wait_for("fields", 3, timeout=30)
            receiver.wait_for("either", 1, timeout=30)
            time.sleep(1)

        def ids(name: str) -> list[str]:
            return sorted(r.json["id"] for r in receiver.received(name))

    assert ids("won") == ["1"]
    assert ids("deals") == ["1", "2"]
    assert ids("saved") == ["3", "4"]
    assert ids("fields") == ["3", "4", "5"]
    assert ids("either") == ["4"]
    by_id = {r.json["id"]: r.json for r in receiver.received("fields")}
    assert by_id["3"]["record"] == {"id": "c", "name": "Jane"}
    assert "changes" not in by_id["3"]  # changes only on update events
    assert by_id["4"]["changes"] == {"email": {"old": "a", "new": "j@x"}}


def test_challenge_outcomes_and_cache(settings_factory):
    settings = settings_factory()
    with Receiver() as receiver:
        secret = generate_secret()
        ok = receiver.endpoint("ok", secret)
        bad = receiver.endpoint("bad", secret, always(500))
        slow = receiver.endpoint("slow", secret, lambda n, b: Reply(delay_s=6))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            refused = f"http://127.0.0.1:{s.getsockname()[1]}/x"

        base = ["subs", "create", "--workspace", "acme", "--events", "*", "--secret", secret]
        assert "HTTP 500" in cli_fails(settings, *base, "--url", bad)
        assert "timed out after 5s" in cli_fails(settings, *base, "--url", slow)
        assert "refused" in cli_fails(settings, *base, "--url", refused)
        assert cli(settings, "subs", "list") == []  # nothing was created
        cli(settings, *base, "--url", ok)
        cli(settings, *base, "--url", ok)  # cached for an hour: not challenged again
        challenges = [r for r in receiver.received("ok") if "challenge" in (r.json or {})]
        assert len(challenges) == 1 and challenges[0].verified
        assert len(cli(settings, "subs", "list")) == 2


def test_more_error_paths_write_nothing(settings_factory):
    settings = settings_factory()
    base = [
        "subs",
        "create",
        "--workspace",
        "acme",
        "--url",
        "http://127.0.0.1:9/x",
        "--events",
        "*",
        "--skip-challenge",
    ]
    assert "malformed filter" in cli_fails(settings, *base, "--filter", "stage")
    assert "malformed header" in cli_fails(settings, *base, "--header", "nocolon")
    assert "at most 30s" in cli_fails(settings, *base, "--timeout", "1m")
    assert "secrets look like whsec_" in cli_fails(settings, *base, "--secret", "plain")
    for action in (
        ["update", "sub_x", "--name", "n"],
        ["enable", "sub_x"],
        ["disable", "sub_x"],
        ["roll-secret", "sub_x"],
    ):
        assert "unknown subscription sub_x" in cli_fails(settings, "subs", *action)
    assert consume_all(settings.bootstrap_servers, settings.topic_prefix + "subscriptions") == []


def test_endpoint_limit_per_workspace(settings_factory):
    settings = settings_factory(max_endpoints_per_workspace=2)
    base = ["subs", "create", "--url", "http://127.0.0.1:9/x", "--events", "*", "--skip-challenge"]
    cli(settings, *base, "--workspace", "acme")
    cli(settings, *base, "--workspace", "acme")
    err = cli_error(
        settings, *base, "--workspace", "acme", env={"WEBHOOK_MAX_ENDPOINTS_PER_WORKSPACE": "2"}
    )
    assert "already has 2 endpoints" in err
    cli(settings, *base, "--workspace", "globex")
    assert len(cli(settings, "subs", "list")) == 3


def test_update_disable_and_show_never_print_secrets(settings_factory):
    settings = settings_factory()
    secret = generate_secret()
    sub = cli(
        settings,
        "subs",
        "create",
        "--workspace",
        "acme",
        "--url",
        "http://127.0.0.1:9/x",
        "--events",
        "*",
        "--secret",
        secret,
        "--skip-challenge",
    )
    updated = cli(
        settings,
        "subs",
        "update",
        sub["id"],
        "--name",
        "renamed",
        "--events",
        "deal.*",
        "--timeout",
        "5s",
        "--header",
        "X-Team: core",
        "--skip-challenge",
    )
    assert updated["name"] == "renamed" and updated["events"] == ["deal.*"]
    assert cli(settings, "subs", "disable", sub["id"])["status"] == "BLOCKED"
    shown = cli(settings, "subs", "show", sub["id"])
    assert shown["status"] == "BLOCKED" and shown["timeout_ms"] == 5000
    assert shown["headers"] == ["X-Team"]
    assert cli(settings, "subs", "list", "--status", "BLOCKED")[0]["id"] == sub["id"]
    assert secret not in orjson.dumps(shown).decode()


def test_worker_refuses_encrypted_secrets_without_key(settings_factory):
    key = SecretBox.generate_key()
    settings = settings_factory(secrets_key=key)
    cli(
        settings,
        "subs",
        "create",
        "--workspace",
        "acme",
        "--url",
        "http://127.0.0.1:9/x",
        "--events",
        "*",
        "--skip-challenge",
    )
    env = settings_env(settings)
    env.pop("WEBHOOK_SECRETS_KEY")
    result = subprocess.run(
        [sys.executable, "-m", "worker", "run"], env=env, cwd=REPO, capture_output=True, timeout=60
    )
    err = result.stderr.decode().strip().splitlines()
    assert result.returncode != 0
    assert any("WEBHOOK_SECRETS_KEY is not set" in line for line in err), err[-3:]
