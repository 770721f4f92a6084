"""Producers that are not ours: KafkaJS (Node) and Debian's kcat (librdkafka's command line)
write JSON envelopes with a Kafka key to the input topic; every event is delivered, its
signature verified by a real receiver, its body as produced, and events of one key in
their produced order (the events carry no record id, so the Kafka key is their ordering key;
the first event of every key fails once and holds the others of its key behind it)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.integration.test_key_order import key_violations
from tests.support.receiver import Behaviour, Receiver, Reply
from tests.support.subs import SubsWriter
from tests.support.worker import running
from worker.subscriptions.secrets import generate_secret

NODE_DIR = Path.home() / ".cache" / "webhook-worker" / "node"
KAFKAJS = "kafkajs@2.2.4"
SCRIPT = Path(__file__).parents[1] / "support" / "kafkajs_produce.js"
KEYS = 4
PER_KEY = 3


@pytest.fixture(scope="module")
def node_path() -> str:
    """NODE_PATH holding kafkajs, installed from npm into the cache when missing."""
    if not (NODE_DIR / "node_modules" / "kafkajs" / "package.json").exists():
        npm = shutil.which("npm")
        assert npm, "npm is missing (scripts/test installs Debian's nodejs and npm)"
        subprocess.run(
            [npm, "install", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund", KAFKAJS],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return str(NODE_DIR / "node_modules")


def envelopes(producer: str) -> list[tuple[str, dict[str, object]]]:
    """(key, event) in produce order: ``PER_KEY`` events for each of ``KEYS`` keys, no record
    id (the Kafka key orders them), a non-ASCII string to check the bytes pass unchanged."""
    return [
        (
            f"{producer}{k}",
            {
                "id": f"{producer}{k}-{n}",
                "event": "contact.updated",
                "workspace": "acme",
                "record": {"name": "Zoë Ångström", "n": n},
                "changes": {"stage": {"old": n, "new": n + 1}},
            },
        )
        for n in range(PER_KEY)
        for k in range(KEYS)
    ]


def produce_with_kafkajs(
    node_path: str,
    bootstrap: str,
    topic: str,
    events: list[tuple[str, dict[str, object]]],
    tmp: Path,
) -> None:
    records = [{"key": key, "value": orjson.dumps(event).decode()} for key, event in events]
    path = tmp / "kafkajs-records.json"
    path.write_bytes(orjson.dumps(records))
    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "node is missing (scripts/test installs Debian's nodejs)"
    result = subprocess.run(
        [node, str(SCRIPT), bootstrap, topic, str(path)],
        env={**os.environ, "NODE_PATH": node_path},
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()


def produce_with_kcat(
    bootstrap: str, topic: str, events: list[tuple[str, dict[str, object]]]
) -> None:
    kcat = shutil.which("kcat")
    assert kcat, "kcat is missing (scripts/test installs Debian's kcat)"
    lines = b"".join(key.encode() + b"\t" + orjson.dumps(event) + b"\n" for key, event in events)
    # -K: key and value split at the tab; acks=all; one record per line, in order.
    result = subprocess.run(
        [kcat, "-P", "-b", bootstrap, "-t", topic, "-K", "\t", "-X", "acks=all"],
        input=lines,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()


def fail_first_of_each_key() -> Behaviour:
    """The first attempt of each key's first event fails (503): its key's later events must
    wait for its retry."""
    seen: set[str] = set()

    def behaviour(n: int, body: bytes) -> Reply:
        event_id = orjson.loads(body)["id"]
        first = event_id.endswith("-0") and event_id not in seen
        seen.add(event_id)
        return Reply(status=503 if first else 200)

    return behaviour


@pytest.mark.timeout(180)
def test_kafkajs_and_kcat_events_are_delivered_signed_and_in_key_order(
    settings_factory, node_path, tmp_path
):
    settings = settings_factory(partitions=3, retry_delays="300ms")
    produced = {
        "kafkajs": envelopes("j"),
        "kcat": envelopes("c"),
    }
    with Receiver() as receiver:
        secret = generate_secret()
        url = receiver.endpoint("foreign", secret, fail_first_of_each_key())
        SubsWriter(settings).create(
            "acme", url, ["contact.*"], secret=secret, ordering="key", max_in_flight=10
        )
        with running(settings):
            produce_with_kafkajs(
                node_path,
                settings.bootstrap_servers,
                settings.input_topics,
                produced["kafkajs"],
                tmp_path,
            )
            produce_with_kcat(settings.bootstrap_servers, settings.input_topics, produced["kcat"])
            every = {event["id"] for events in produced.values() for _, event in events}
            got = receiver.wait_for_ids("foreign", every, timeout=90)
            got = receiver.wait_for_success("foreign", len(every), timeout=30)
    assert all(r.verified for r in got), [r.error for r in got if not r.verified]
    bodies = {r.json["id"]: r.json for r in got}
    for events in produced.values():
        for _, event in events:
            delivered = bodies[str(event["id"])]
            assert {k: delivered.get(k) for k in event} == event, delivered
    assert key_violations(got) == []
    retried = [r.json["id"] for r in got if r.status_sent == 503]
    assert sorted(retried) == sorted(i for i in every if i.endswith("-0")), retried
    print(
        f"\nforeign producers: {len(every)} events (kafkajs {len(produced['kafkajs'])}, kcat "
        f"{len(produced['kcat'])}), {len(got)} attempts, {len(retried)} retried heads, "
        "0 key-order violations, all signatures verified"
    )
