"""Dead-letter tooling through the real CLI, a real worker and a real receiver: an endpoint
answers 400 to 200 events (all dead letters, the subscription auto-disabled on the way), is
fixed and re-enabled; ``dlq redrive`` delivers all 200 in order with their webhook-ids, and
a second redrive sends nothing."""

from __future__ import annotations

import time

import httpx

from tests.support.cli import cli_error, cli_json, run_cli
from tests.support.kafka import consume_all, produce_json
from tests.support.receiver import Receiver, Reply
from tests.support.worker import running
from worker.codec.avro import AvroCodec
from worker.codec.records import RecordCodec
from worker.kafka.topics import Topics
from worker.subscriptions.secrets import generate_secret

CODEC = RecordCodec(AvroCodec())
EVENTS = 200


def create_sub(settings, url: str, secret: str) -> str:
    sub = cli_json(
        settings,
        *("subs", "create", "--workspace", "acme", "--url", url, "--events", "*"),
        *("--secret", secret, "--skip-challenge"),
    )
    return str(sub["id"])


def dead_letters(settings, *filters: str) -> dict:
    return cli_json(settings, "dlq", "list", *filters)  # type: ignore[no-any-return]


def wait_dead_letters(settings, sub_id: str, count: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        listing = dead_letters(settings, "--subscription", sub_id)
        if listing["total"] >= count:
            return listing
        assert time.monotonic() < deadline, f"{listing['total']} of {count} dead letters"
        time.sleep(0.5)


def disabled_gauge(port: int) -> float:
    """The worker's own count of TOO_MANY_ERRORS subscriptions, from /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    line = 'webhook_subscriptions{status="TOO_MANY_ERRORS"} '
    return next(float(x.split()[-1]) for x in text.splitlines() if x.startswith(line))


def wait_gauge(port: int, value: float, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while disabled_gauge(port) != value:
        assert time.monotonic() < deadline, f"the worker never counted {value} disabled"
        time.sleep(0.2)


def test_redrive_after_fix_delivers_all_in_order_once(settings_factory):
    settings = settings_factory(partitions=3, retry_delays="100ms", disable_after_failures=20)
    broken = [True]
    with Receiver() as receiver:
        secret = generate_secret()
        url = receiver.endpoint("fixed", secret, lambda n, b: Reply(400 if broken[0] else 200))
        other_url = receiver.endpoint("other", secret, lambda n, b: Reply(400))
        sub_id = create_sub(settings, url, secret)
        other_id = create_sub(settings, other_url, secret)
        events = [
            {"id": f"e{i:03d}", "event": "deal.updated", "workspace": "acme"} for i in range(EVENTS)
        ]
        with running(settings) as worker:
            produce_json(settings.bootstrap_servers, settings.input_topics, events, key="acme")
            listing = wait_dead_letters(settings, sub_id, EVENTS)
            wait_dead_letters(settings, other_id, EVENTS)
            letters = listing["dead_letters"]
            assert [d["event_id"] for d in letters] == [e["id"] for e in events]
            reasons = {d["reason"] for d in letters}
            # 400s dead-letter at once; after 20 of them the worker disables the endpoint.
            assert "client_error" in reasons and reasons <= {"client_error", "endpoint_disabled"}
            assert cli_json(settings, "subs", "show", sub_id)["status"] == "TOO_MANY_ERRORS"
            failed_requests = len(receiver.received("fixed"))

            # Filters narrow; show gives one letter in full.
            assert dead_letters(settings, "--reason", "client_error", "--subscription", sub_id)[
                "total"
            ] == sum(1 for d in letters if d["reason"] == "client_error")
            assert dead_letters(settings, "--workspace", "nope")["total"] == 0
            assert dead_letters(settings, "--since", "1h")["total"] == 2 * EVENTS
            assert dead_letters(settings, "--until", "1h")["total"] == 0
            shown = cli_json(settings, "dlq", "show", letters[0]["webhook_id"])
            assert shown["event_id"] == "e000" and shown["body"]["id"] == "e000"
            assert shown["last_status"] == 400 and shown["redriven"] is None

            # Not ACTIVE: refused, nothing sent.
            refusal = cli_error(settings, "dlq", "redrive", "--subscription", sub_id)
            assert "TOO_MANY_ERRORS" in refusal and "--force" in refusal

            wait_gauge(worker.port, 2)  # both endpoints disabled by the worker
            broken[0] = False
            cli_json(settings, "subs", "enable", sub_id)
            wait_gauge(worker.port, 1)  # the worker's table has the enable

            dry = cli_json(settings, "dlq", "redrive", "--subscription", sub_id, "--dry-run")
            assert dry["dry_run"] is True and dry["to_send"] == EVENTS
            assert [d["event_id"] for d in dry["would_send"]] == [e["id"] for e in events]

            first = cli_json(settings, "dlq", "redrive", "--subscription", sub_id, "--rate", "0")
            assert first["sent"] == EVENTS and first["failed"] == []
            got = receiver.wait_for_success("fixed", EVENTS, timeout=60)[failed_requests:]
            assert [r.json["id"] for r in got] == [e["id"] for e in events]
            assert all(r.verified for r in got)
            assert [r.headers["webhook-id"] for r in got] == [d["webhook_id"] for d in letters]

            second = cli_json(settings, "dlq", "redrive", "--subscription", sub_id)
            assert second["sent"] == 0 and second["already_redriven"] == EVENTS
            time.sleep(2)
            assert len(receiver.received("fixed")) == failed_requests + EVENTS

            # The redrive marked exactly its own subscription's letters.
            marked = dead_letters(settings, "--subscription", sub_id)["dead_letters"]
            assert all(d["redriven"]["redrive_id"] == first["redrive_id"] for d in marked)
            others = dead_letters(settings, "--subscription", other_id)["dead_letters"]
            assert all(d["redriven"] is None for d in others)
            assert len(receiver.received("other")) < EVENTS  # disabled, not hammered

    # Every mark on the checkpoint topic points at one of the re-driven letters.
    marks = consume_all(settings.bootstrap_servers, Topics.from_settings(settings).redrives)
    assert len(marks) == EVENTS
    positions = {d["position"] for d in marked}
    for record in marks:
        mark = CODEC.decode_redrive(record.value)
        assert f"{mark.dlq_partition}:{mark.dlq_offset}" in positions


def test_bad_input_is_one_line_and_nonzero(settings_factory):
    settings = settings_factory()
    assert "not a time" in cli_error(settings, "dlq", "list", "--since", "yesterday")
    assert "no dead letter" in cli_error(settings, "dlq", "show", "msg_nope")
    assert "--rate" in cli_error(settings, "dlq", "redrive", "--rate", "-1")
    empty = cli_json(settings, "dlq", "redrive", "--subscription", "sub_nope")
    assert empty["matched"] == 0 and empty["sent"] == 0
    text = run_cli(settings, "dlq", "list")
    assert text.returncode == 0 and b"no dead letters match" in text.stdout
