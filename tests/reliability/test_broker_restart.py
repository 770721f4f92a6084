"""The only broker is ``kill -9``ed mid-run and restarted: deliveries are flowing, retries are
pending in delay topics and a key-scoped endpoint that is down has lanes parked behind its
heads. Nothing is lost, order holds in every scope, the worker and the API say they are not
ready while the broker is gone and recover on their own, without a restart.

A broker of its own (one KRaft node), so the session's broker is never killed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.reliability.test_broker_outage import readyz
from tests.support.api import api_settings, running_api, token_maker
from tests.support.flow import (
    endpoint_order_violations,
    fail_first_try_of_every,
    key_order_violations,
    keyed_events,
    successes,
    wait_settled,
)
from tests.support.kafka import produce_json
from tests.support.receiver import Receiver, Reply
from tests.support.subs import SubsWriter
from tests.support.worker import ProcessWorker
from worker.kafka.kafkabroker import KafkaCluster
from worker.kafka.processes import free_port
from worker.subscriptions.secrets import generate_secret

BEFORE, AFTER, KEYS = 600, 300, 20
DOWN_S = 8.0  # how long the broker stays dead


@pytest.fixture(scope="module")
def cluster() -> Iterator[KafkaCluster]:
    with KafkaCluster(nodes=1) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def kafka_bootstrap(cluster: KafkaCluster) -> str:
    """Overrides the session broker for this module's settings_factory."""
    return cluster.bootstrap


def down_until(healed: threading.Event) -> object:
    """503 to everything until ``healed`` is set: the endpoint's lanes park behind heads."""
    return lambda _n, _body: Reply(status=200 if healed.is_set() else 503)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_broker_killed_and_restarted_mid_run(cluster, settings_factory, tmp_path):
    # 30 s of retries: the endpoint that is down outlives the broker's death, not its budget;
    # no auto-disabling, which would dead-letter its backlog instead of parking it.
    settings = settings_factory(
        partitions=3, retry_delays="500ms,2s,4s,8s,16s", disable_after_failures=0
    )
    writer = SubsWriter(settings)
    healed = threading.Event()
    scopes = {"key": "key", "strict": "endpoint", "any": "none", "down": "key"}
    events = keyed_events(0, BEFORE + AFTER, KEYS)
    with Receiver() as receiver, running_api(api_settings(settings, str(tmp_path))) as api:
        expected: dict[str, tuple[str, list[dict]]] = {}
        for name, scope in scopes.items():
            secret = generate_secret()
            behaviour = down_until(healed) if name == "down" else fail_first_try_of_every(20)
            url = receiver.endpoint(name, secret, behaviour)
            sub = writer.create("acme", url, ["*"], secret=secret, ordering=scope)
            expected[name] = (sub.id, events)
        with token_maker(settings) as tokens:
            token = tokens.workspace("acme")
        produce_json(settings.bootstrap_servers, settings.input_topics, events[:BEFORE], "acme")
        worker = ProcessWorker(settings, free_port())
        try:
            worker.wait_ready()
            deadline = time.monotonic() + 60
            while len(successes(receiver, "key")) < BEFORE // 4:
                assert time.monotonic() < deadline, "no progress before the kill"
                time.sleep(0.05)

            assert written(settings, "parked"), "nothing parked behind the down endpoint's heads"
            node = cluster.nodes[0]
            node.kill()
            killed_at = time.monotonic()
            at_kill = {name: len(successes(receiver, name)) for name in scopes}
            assert at_kill["key"] < BEFORE, "the kill came too late to prove anything"
            worker_states, api_states = [], []
            while time.monotonic() < killed_at + DOWN_S:
                worker_states.append(readyz(worker.port)[0])
                api_states.append(readyz_api(api.url))
                assert worker.proc.poll() is None, worker.output()[-3000:]
                time.sleep(0.25)
            cluster.restart(node)
            restarted_at = time.monotonic()
            assert 503 in worker_states, f"the worker's /readyz never said 503: {worker_states}"
            assert 503 in api_states, f"the API's /readyz never said 503: {api_states}"

            wait_ready_again(worker.port, api.url, restarted_at)
            print(
                f"\nbroker killed with {at_kill} delivered; worker /readyz 503 in "
                f"{worker_states.count(503)}/{len(worker_states)} samples, API in "
                f"{api_states.count(503)}/{len(api_states)}; both ready "
                f"{time.monotonic() - restarted_at:.1f}s after the restart"
            )
            produce_json(settings.bootstrap_servers, settings.input_topics, events[BEFORE:], "acme")
            healed.set()
            dead = wait_settled(receiver, settings, expected, timeout=120)
            # The API writes again too: a subscription created through it after the restart.
            created = httpx.post(
                f"{api.url}/v1/workspaces/acme/subscriptions",
                headers={"Authorization": f"Bearer {token}"},
                json={"url": receiver.endpoint("late", generate_secret()), "events": ["*"]},
                timeout=30,
            )
            assert created.status_code == 201, created.text
            assert worker.terminate() == 0, worker.output()[-3000:]
        finally:
            (tmp_path / "worker.log").write_text(worker.output())
            worker.close()

    violations = []
    for name, scope in scopes.items():
        got = receiver.received(name)
        assert all(r.verified for r in got), f"{name}: a bad signature"
        lost = {e["id"] for e in events} - set(successes(receiver, name)) - dead[name]
        assert not lost, f"{name}: lost {sorted(lost)[:5]}"
        if scope == "key":
            violations += key_order_violations(receiver, name, events, dead[name])
        elif scope == "endpoint":
            violations += endpoint_order_violations(receiver, name, events, dead[name])
    dead_count = {name: len(d) for name, d in dead.items()}
    duplicates = {
        name: sum(1 for r in receiver.received(name) if 200 <= r.status_sent < 300)
        - len(successes(receiver, name))
        for name in scopes
    }
    print(f"dead-lettered {dead_count}, duplicate successes {duplicates}")
    assert violations == [], violations[:10]
    # Every failure here is retryable and heals within the retry budget: a dead letter would
    # mean a retry was lost or mistimed across the broker's death.
    assert sum(dead_count.values()) == 0, dead_count


def written(settings, topic: str) -> int:
    """Records ever written to one of the worker's topics (high watermarks summed)."""
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": "probe"})
    try:
        name = settings.topic_prefix + topic
        partitions = consumer.list_topics(name, timeout=10).topics[name].partitions
        return sum(
            consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
            for p in partitions
        )
    finally:
        consumer.close()


def readyz_api(url: str) -> int | None:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code
    except httpx.HTTPError:
        return None


def wait_ready_again(worker_port: int, api_url: str, since: float, timeout: float = 60) -> None:
    while readyz(worker_port)[0] != 200 or readyz_api(api_url) != 200:
        assert time.monotonic() < since + timeout, (readyz(worker_port), readyz_api(api_url))
        time.sleep(0.2)
