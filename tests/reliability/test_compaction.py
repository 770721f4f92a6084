"""Real log compaction on Apache Kafka: the compacted topics (subscriptions, api-tokens,
sources, parked) are cleaned by the broker's log cleaner -- superseded records and tombstoned
keys removed -- and a restarted worker and API rebuild exactly what was there before: the
deleted subscription stays deleted, the updated one keeps its update, the rolled secret stays
rolled, the revoked token stays revoked, the deleted source stays deleted, and the lanes held
behind failed heads (head markers and parked tasks in ``parked``) resume in order once their
endpoint recovers.

The topics get ``segment.ms=100``, ``min.cleanable.dirty.ratio=0.01`` and
``delete.retention.ms=100`` (altered after ``topics ensure``, as an operator would), and the
test writes a harmless tombstone (a key no reader knows) to each every 250 ms, so segments roll
and the cleaner runs, until the broker's ``cleaner-offset-checkpoint`` shows that each topic
was cleaned past everything the product wrote.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.integration.test_key_order import key_violations, wait_until
from tests.support.api import ThreadApi, api_settings, client, token_maker
from tests.support.kafka import Record, consume_all, produce_json
from tests.support.receiver import Behaviour, Receiver, Reply
from tests.support.worker import ProcessWorker
from worker.config import Settings
from worker.kafka.clients import make_admin
from worker.kafka.kafkabroker import KafkaCluster
from worker.kafka.processes import free_port
from worker.kafka.topics import Topics

CLEANING = {"segment.ms": "100", "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "100"}
PROBE_KEY = b"compaction-probe"  # no reader knows it: a tombstone for it changes nothing
RETRY = "30s"  # the held heads' retry waits out the compaction (the first worker is gone)
KEYS, PER_KEY = ("r1", "r2"), 3


@pytest.fixture
def cluster(kafka_cluster: KafkaCluster | None) -> KafkaCluster:
    if kafka_cluster is None:
        pytest.skip("needs the session's own Apache Kafka (its log cleaner and data dir)")
    return kafka_cluster


def enable_cleaning(settings: Settings, topics: list[str]) -> None:
    admin = make_admin(settings)
    entries = [
        ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
        for name, value in CLEANING.items()
    ]
    resources = [ConfigResource(ResourceType.TOPIC, t, incremental_configs=entries) for t in topics]
    for future in admin.incremental_alter_configs(resources).values():
        future.result(30)


def checkpoints(cluster: KafkaCluster) -> dict[str, int]:
    """The log cleaner's ``cleaner-offset-checkpoint``: topic -> first offset not yet cleaned
    (partition 0; every compacted topic here has one partition)."""
    path = cluster.nodes[0].data_dir / "cleaner-offset-checkpoint"
    if not path.exists():
        return {}
    out: dict[str, int] = {}
    for line in path.read_text().splitlines()[2:]:
        topic, partition, offset = line.split()
        if partition == "0":
            out[topic] = int(offset)
    return out


def clean_until_past(cluster: KafkaCluster, bootstrap: str, ends: dict[str, int]) -> float:
    """Write probe tombstones until the cleaner has cleaned every topic up to ``ends`` (its
    end offset before the probes); the seconds it took."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    started = time.monotonic()
    try:
        while True:
            cleaned = checkpoints(cluster)
            if all(cleaned.get(topic, -1) >= end for topic, end in ends.items()):
                return time.monotonic() - started
            assert time.monotonic() - started < 120, f"not cleaned: {cleaned} < {ends}"
            for topic in ends:
                producer.produce(topic, None, PROBE_KEY)
            assert producer.flush(10) == 0
            time.sleep(0.25)
    finally:
        producer.flush(10)


def live(records: list[Record], key: bytes) -> list[Record]:
    return [r for r in records if r.key == key]


def held_events(start: int = 0) -> list[dict[str, object]]:
    """Events of two keys (record ids) for the key-scoped subscription, ids ``h-<key>-<n>``."""
    return [
        {
            "event": "contact.updated",
            "workspace": "acme",
            "id": f"h-{key}-{n}",
            "record": {"id": key, "n": n},
        }
        for n in range(start, start + PER_KEY)
        for key in KEYS
    ]


class Endpoints:
    """The receiver's endpoints; ``held`` answers 503 until ``recovered`` is set."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.recovered = threading.Event()
        placeholder = "whsec_" + "A" * 32
        self.urls = {
            name: receiver.endpoint(name, placeholder, self._behaviour(name))
            for name in ("keep", "gone", "rolled", "held")
        }

    def _behaviour(self, name: str) -> Behaviour:
        def behaviour(n: int, body: bytes) -> Reply:
            return Reply(503 if name == "held" and not self.recovered.is_set() else 200)

        return behaviour


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def create(api: httpx.Client, url: str, **extra: object) -> dict[str, object]:
    body = {"url": url, "events": ["contact.*"], "skip_challenge": True, **extra}
    response = api.post("/v1/workspaces/acme/subscriptions", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_a_compacted_log_rebuilds_exactly(settings_factory, cluster, receiver, tmp_path: Path):
    settings = settings_factory(partitions=1, retry_delays=RETRY, disable_after_failures=0)
    topics = Topics.from_settings(settings)
    compacted = [topics.subscriptions, topics.api_tokens, topics.sources, topics.parked]
    enable_cleaning(settings, compacted)
    endpoints = Endpoints(receiver)
    bootstrap = settings.bootstrap_servers
    assert bootstrap

    # -- Before: every kind of change, made through the API (and the token writer).
    with token_maker(settings) as tokens:
        admin_token = tokens.admin()
        kept_token = tokens.workspace("acme", "kept")
        revoked_token = tokens.workspace("acme", "revoked")
        tokens.revoke(revoked_token)
    first_api = ThreadApi(api_settings(settings, str(tmp_path / "api-1"))).start()
    try:
        with client(first_api, admin_token) as api:
            subs = {
                "keep": create(api, endpoints.urls["keep"]),
                "gone": create(api, endpoints.urls["gone"]),
                "rolled": create(api, endpoints.urls["rolled"]),
                "held": create(api, endpoints.urls["held"], ordering="key", max_in_flight=10),
            }
            base = "/v1/workspaces/acme/subscriptions"
            patched = api.patch(
                f"{base}/{subs['keep']['id']}", json={"events": ["contact.*", "deal.*"]}
            )
            assert patched.status_code == 200, patched.text
            assert api.delete(f"{base}/{subs['gone']['id']}").status_code == 204
            assert api.get(f"{base}/{subs['gone']['id']}").status_code == 404
            old_secret = str(subs["rolled"]["secret"])
            rolled = api.post(f"{base}/{subs['rolled']['id']}/roll-secret", json={"grace": "0s"})
            assert rolled.status_code == 200, rolled.text
            new_secret = rolled.json()["secret"]
            for name in ("keep", "gone", "held"):
                receiver.rekey(name, str(subs[name]["secret"]))
            receiver.rekey("rolled", new_secret)
            sources = {}
            for name in ("kept", "deleted"):
                made = api.post(
                    "/v1/workspaces/acme/sources",
                    json={
                        "name": name,
                        "topic": f"in-{settings.topic_prefix}{name}",
                        "verify": "none",
                    },
                )
                assert made.status_code == 201, made.text
                sources[name] = made.json()["id"]
            deleted = api.delete(f"/v1/workspaces/acme/sources/{sources['deleted']}")
            assert deleted.status_code == 204, deleted.text
    finally:
        first_api.stop()

    # -- The first worker: heads fail and are held in parked behind their retry.
    first = ProcessWorker(settings, free_port())
    try:
        first.wait_ready(90)
        produce_json(bootstrap, settings.input_topics, held_events(), key="k")
        receiver.wait_for_success("keep", len(held_events()), timeout=60)

        def heads() -> list[Record]:
            return [
                r
                for r in consume_all(bootstrap, topics.parked)
                if r.key and r.key.startswith(b"head/") and r.value is not None
            ]

        wait_until(lambda: len(heads()) >= len(KEYS), "head markers in parked", 60)
        assert first.terminate(60) == 0, first.output()[-2000:]
    finally:
        first.close()
    tried = {r.json["id"] for r in receiver.received("held")}
    assert tried == {f"h-{key}-0" for key in KEYS}, tried  # the heads only; the rest parked

    # -- Compaction: segments roll and the cleaner cleans past everything written so far
    # (it may have begun already: the worker's own writes roll segments too).
    ends = {t: max(r.offset for r in consume_all(bootstrap, t)) + 1 for t in compacted}
    took = clean_until_past(cluster, bootstrap, ends)
    after = {t: [r for r in consume_all(bootstrap, t) if r.offset < ends[t]] for t in compacted}
    figures = {t.removeprefix(settings.topic_prefix): (ends[t], len(after[t])) for t in compacted}
    print(f"\ncleaned in {took:.1f}s; records written -> left: {figures}")
    for topic in compacted:  # offsets are contiguous as written: the end offset is the count
        assert len(after[topic]) < ends[topic], (topic, figures)
    parked_heads = [r for r in after[topics.parked] if r.key and r.key.startswith(b"head/")]
    assert len([r for r in parked_heads if r.value is not None]) == len(KEYS), parked_heads
    sub_records = after[topics.subscriptions]
    assert all(r.value is None for r in live(sub_records, str(subs["gone"]["id"]).encode()))
    for name in ("keep", "rolled"):
        assert len(live(sub_records, str(subs[name]["id"]).encode())) == 1, name
    token_records = after[topics.api_tokens]
    assert len(live(token_records, revoked_token.split("_")[1].encode())) == 1

    # -- After: a new API and a new worker read only the compacted log.
    endpoints.recovered.set()
    second_api = ThreadApi(api_settings(settings, str(tmp_path / "api-2"))).start()
    second = ProcessWorker(settings, free_port())
    try:
        with client(second_api, admin_token) as api:
            base = "/v1/workspaces/acme/subscriptions"
            assert api.get(f"{base}/{subs['gone']['id']}").status_code == 404
            assert api.get(f"{base}/{subs['keep']['id']}").json()["events"] == [
                "contact.*",
                "deal.*",
            ]
            assert {s["id"] for s in api.get(base).json()["data"]} == {
                subs[n]["id"] for n in ("keep", "rolled", "held")
            }
            incoming = f"{second_api.url}/in"
            assert httpx.post(f"{incoming}/{sources['deleted']}", json={}).status_code == 404
            assert httpx.post(f"{incoming}/{sources['kept']}", json={}).status_code < 300
        with client(second_api, kept_token) as acme:
            assert acme.get(base).status_code == 200
        with client(second_api, revoked_token, valid=False) as gone:
            assert gone.get(base).status_code == 401

        second.wait_ready(90)
        fresh = [
            {"event": "contact.created", "workspace": "acme", "id": "after-1"},
            {"event": "deal.created", "workspace": "acme", "id": "after-2"},
        ]
        produce_json(bootstrap, settings.input_topics, fresh, key="k")
        receiver.wait_for_ids("keep", {"after-1", "after-2"}, timeout=60)  # the update holds
        got = receiver.wait_for_ids("rolled", {"after-1"}, timeout=30)
        held_ids = {str(e["id"]) for e in held_events()} | {"after-1"}
        wait_until(
            lambda: (
                held_ids
                <= {r.json["id"] for r in receiver.received("held") if r.status_sent == 200}
            ),
            "the held lanes resume",
            120,
        )
    finally:
        second.close()
        second_api.stop()

    assert receiver.received("gone") == []
    rolled_requests = receiver.received("rolled")
    assert all(r.verified for r in rolled_requests)
    for r in rolled_requests:  # the old secret never signs again
        with pytest.raises(WebhookVerificationError):
            Webhook(old_secret).verify(r.body, r.headers)
    assert got
    held = receiver.received("held")
    assert all(r.verified for r in held)
    assert key_violations([r for r in held if r.json["id"].startswith("h-")]) == []
