"""The broker connection is cut for 30 s mid-run, through a proxy the test controls: the
worker stays up, says it is not ready while the broker is unreachable, recovers on its own
and loses nothing.

The broker is a dedicated Apache Kafka node that advertises the proxy's port, so every client
(the worker's and the test's own) reaches it only through the proxy.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.test_rebalance import first_arrivals
from tests.support.kafka import produce_json
from tests.support.receiver import Behaviour, Receiver, Reply
from tests.support.subs import SubsWriter
from tests.support.tcp_proxy import TcpProxy
from tests.support.worker import ProcessWorker
from worker.kafka.kafkabroker import KafkaCluster
from worker.kafka.processes import free_port
from worker.subscriptions.secrets import generate_secret

OUTAGE_S = 30.0
BEFORE = 600  # events produced before the cut
AFTER = 150  # events produced once the link is back


@pytest.fixture(scope="module")
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy(target_port=0) as proxy:
        advertised = {"advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy.port}"}
        cluster = KafkaCluster(nodes=1, config=advertised)
        proxy.target_port = cluster.nodes[0].port
        with cluster:
            yield proxy


@pytest.fixture(scope="module")
def kafka_bootstrap(proxy: TcpProxy) -> str:
    """Overrides the session broker: this module's settings_factory goes through the proxy."""
    return f"127.0.0.1:{proxy.port}"


def readyz(port: int) -> tuple[int | None, str]:
    """(status, body) of /readyz, or (None, error) when the worker does not answer."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
        return response.status_code, response.text.strip()
    except httpx.HTTPError as exc:
        return None, repr(exc)


def fail_first_try_of_every_20th() -> Behaviour:
    """Every 20th event fails once (503) and then succeeds: retries run across the outage,
    yet nothing can be dead-lettered, so every delivery must arrive. (Each failure holds an
    ordered endpoint for a retry delay, so more failures would only make the test slower.)"""
    seen: set[str] = set()

    def behaviour(n: int, body: bytes) -> Reply:
        event_id = body.split(b'"id":"', 1)[1].split(b'"', 1)[0].decode()
        first = event_id not in seen
        seen.add(event_id)
        return Reply(status=503 if first and int(event_id[1:]) % 20 == 0 else 200, delay_s=0.002)

    return behaviour


def wait_all(receiver: Receiver, names: list[str], ids: set[str], timeout: float) -> None:
    """Wait until every endpoint got a 2xx for every id; a short summary on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        missing = {
            name: ids - {r.json["id"] for r in receiver.received(name) if r.status_sent == 200}
            for name in names
        }
        if not any(missing.values()):
            return
        if time.monotonic() > deadline:
            summary = {name: (len(m), sorted(m)[:5]) for name, m in missing.items()}
            raise AssertionError(f"not delivered after {timeout}s: {summary}")
        time.sleep(0.05)


@pytest.mark.timeout(150)
def test_broker_cut_for_30s_worker_recovers_without_restart(settings_factory, proxy, tmp_path):
    settings = settings_factory(partitions=3, retry_delays="200ms,500ms,1s")
    writer = SubsWriter(settings)
    names = [f"b{i}" for i in range(4)]
    with Receiver() as receiver:
        for i, name in enumerate(names):
            secret = generate_secret()
            url = receiver.endpoint(name, secret, fail_first_try_of_every_20th())
            writer.create("acme", url, ["*"], secret=secret, ordered=i % 2 == 0)
        events = [
            {"event": "deal.updated", "workspace": "acme", "id": f"x{n:05d}"}
            for n in range(BEFORE + AFTER)
        ]
        produce_json(settings.bootstrap_servers, settings.input_topics, events[:BEFORE], key="acme")

        def delivered() -> int:
            return sum(len(set(first_arrivals(receiver, n))) for n in names)

        worker = ProcessWorker(settings, free_port())
        try:
            worker.wait_ready()
            deadline = time.monotonic() + 60
            while delivered() < 250:
                assert time.monotonic() < deadline, "no progress before the cut"
                time.sleep(0.05)

            # The outage: every live connection reset, new ones refused, for 30 s.
            proxy.cut()
            cut_at = time.monotonic()
            at_cut = delivered()
            assert at_cut < len(names) * BEFORE, "the cut came too late to prove anything"
            samples: list[tuple[float, int | None, str]] = []
            while time.monotonic() < cut_at + OUTAGE_S:
                status, text = readyz(worker.port)
                samples.append((time.monotonic() - cut_at, status, text))
                assert worker.proc.poll() is None, worker.output()[-3000:]
                time.sleep(0.25)
            proxy.restore()
            restored_at = time.monotonic()
            assert proxy.refused > 0, "the worker never tried to reconnect: was anything cut?"

            not_ready = [s for s in samples if s[1] == 503]
            assert not_ready, f"/readyz never went false during the outage: {samples[-5:]}"
            print(
                f"\noutage: delivered {at_cut} before the cut, {delivered()} at restore; "
                f"/readyz 503 first after {not_ready[0][0]:.1f}s ({not_ready[0][2]!r}), "
                f"{len(not_ready)}/{len(samples)} samples 503, "
                f"{sum(1 for s in samples if s[1] is None)} unanswered; "
                f"{proxy.refused} connections refused"
            )
            # Still not ready at the end of the outage (not just a blip at its start).
            assert samples[-1][1] != 200, samples[-5:]

            # Back: ready again without a restart, and new events flow too.
            while readyz(worker.port)[0] != 200:
                assert time.monotonic() < restored_at + 40, readyz(worker.port)
                assert worker.proc.poll() is None, worker.output()[-3000:]
                time.sleep(0.2)
            print(f"ready again {time.monotonic() - restored_at:.1f}s after the restore")
            produce_json(
                settings.bootstrap_servers, settings.input_topics, events[BEFORE:], key="acme"
            )
            wait_all(receiver, names, {e["id"] for e in events}, timeout=60)
            print(f"everything delivered {time.monotonic() - restored_at:.1f}s after the restore")
            assert worker.proc.poll() is None, "the worker exited"
            assert worker.terminate() == 0, worker.output()[-3000:]
        finally:
            (tmp_path / "worker.log").write_text(worker.output())  # kept by pytest for a look
            worker.close()

    expected = [e["id"] for e in events]
    duplicates: dict[str, int] = {}
    for i, name in enumerate(names):
        got = receiver.received(name)
        successes = [r.json["id"] for r in got if r.status_sent == 200]
        assert set(successes) == set(expected), f"{name}: lost {set(expected) - set(successes)}"
        assert all(r.verified for r in got)
        duplicates[name] = len(successes) - len(set(successes))
        if i % 2 == 0:  # ordered
            assert first_arrivals(receiver, name) == expected, name
    print(f"duplicate successes per endpoint ({len(expected)} events each): {duplicates}")
