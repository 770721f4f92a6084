"""Scenario L: the delivery log's index at scale, without HTTP.

Produces 1,000,000 attempt records (``RecordCodec``, over 2,000 subscriptions, keyed by
subscription like the dispatcher writes them) to the dev broker, then starts the index's
follower on an empty data directory and measures how fast it catches up (attempts/s), the
size of the file, and the latency of ``attempts(one subscription)`` (first page of 50, and a
fourth page through cursors) over 1,000 queries from 50 threads.

``python -m bench --scenarios L [--scale 0.1]`` runs it with the others;
``python -m bench.logindex [--scale 0.1]`` runs it alone on its own broker.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import resource
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from bench.broker import local_broker
from bench.rig import make_settings
from bench.scenarios import Run
from worker.components import Codecs
from worker.config import Settings
from worker.deliverylog import DeliveryLog, index_path, open_log
from worker.kafka.clients import make_producer
from worker.kafka.topics import Topics
from worker.kafka.writes import produce
from worker.model import Attempt
from worker.router import delivery_id

QUERIES = 1_000
THREADS = 50
OUTCOMES = ("success",) * 8 + ("retry", "dead_letter")
REQUEST = orjson.dumps(
    {
        "id": "evt_0123456789",
        "event": "contact.updated",
        "workspace": "ws0",
        "record": {"id": "a1b2", "name": "Jane Smith", "stage": "proposal"},
        "changes": {"stage": {"old": "qualification", "new": "proposal"}},
    }
).decode()


def subscription_ids(count: int) -> list[str]:
    """Ids shaped like ``subs create``'s (``sub_`` + 24 hex digits), the same every run."""
    return [f"sub_{hashlib.blake2b(b'%d' % i, digest_size=12).hexdigest()}" for i in range(count)]


def produce_attempts(settings: Settings, count: int, subscriptions: int) -> float:
    """``count`` attempts round-robin over the subscriptions, two per delivery (a retry and
    its success, or two failures), with random event ids and the router's webhook-ids (so
    neither arrives in index order); seconds taken, all acknowledged."""
    codec = Codecs.load().records
    producer = make_producer(settings, **{"linger.ms": "50"})
    topic = Topics.from_settings(settings).attempts
    subs = subscription_ids(subscriptions)
    now_ms = int(time.time() * 1000)
    started = time.perf_counter()
    event_id = ""
    for i in range(count):
        sub = subs[i % subscriptions]
        if i % 2 == 0:
            event_id = f"evt_{uuid.uuid4().hex}"
        outcome = OUTCOMES[i % len(OUTCOMES)]
        attempt = Attempt(
            delivery_id=delivery_id(event_id, sub),
            subscription_id=sub,
            workspace=f"ws{i % subscriptions % 500}",
            event_id=event_id,
            event_type="contact.updated",
            attempt=1 + i % 2,
            started_ms=now_ms - (count - i),  # spread over the last count ms, oldest first
            latency_ms=42.125,
            url="https://hooks.example.com/webhooks/contacts",
            outcome=outcome,
            status=200 if outcome == "success" else 503,
            request_body=REQUEST,
            response_body='{"received": true}' if outcome == "success" else "upstream down" * 20,
        )
        produce(producer, topic, codec.encode_attempt(attempt), sub.encode())
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0
    return time.perf_counter() - started


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def query_latency(
    log: DeliveryLog, subscriptions: int, pages: int, threads: int = THREADS
) -> dict[str, float]:
    """p50/p99 (ms) of reading ``pages`` pages of 50 of a random subscription's attempts,
    ``QUERIES`` times from ``threads`` threads."""
    rng = random.Random(7)
    subs = rng.choices(subscription_ids(subscriptions), k=QUERIES)

    def one(sub: str) -> float:
        started = time.perf_counter()
        cursor = None
        for _ in range(pages):
            rows, cursor = log.attempts(sub, limit=50, cursor=cursor)
            assert rows
        return (time.perf_counter() - started) * 1000

    with ThreadPoolExecutor(threads) as pool:
        # Warm: every thread opens its connection first, as a running server's threads have.
        list(pool.map(one, subs[:threads]))
        wall = time.perf_counter()
        took = list(pool.map(one, subs))
        wall = time.perf_counter() - wall
    return {
        "p50_ms": round(_percentile(took, 0.5), 2),
        "p99_ms": round(_percentile(took, 0.99), 2),
        "mean_ms": round(statistics.fmean(took), 2),
        "queries_per_s": round(QUERIES / wall),
    }


def scenario_l(run: Run) -> dict[str, Any]:
    count = run.scaled(1_000_000, 10_000)
    subscriptions = run.scaled(2_000, 100)
    with tempfile.TemporaryDirectory(prefix="bench-logindex-") as data_dir:
        settings = make_settings(run.bootstrap, "l", 3, api_data_dir=data_dir)
        produce_s = produce_attempts(settings, count, subscriptions)
        started, cpu = time.perf_counter(), _cpu_s()
        log, follower = open_log(settings, Codecs.load().records)
        try:
            assert follower.wait_caught_up(3600), "the index did not catch up"
            catch_up_s = time.perf_counter() - started
            # This process does nothing else meanwhile: its CPU is the follower's (with its
            # librdkafka threads), which moves less than wall time on a shared machine.
            cpu = _cpu_s() - cpu
            indexed = log.store.reader().execute("SELECT count(*) FROM attempts").fetchone()[0]
            path = index_path(settings)
            size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())
            first_page = query_latency(log, subscriptions, 1)
            fourth_page = query_latency(log, subscriptions, 4)
            few_threads = query_latency(log, subscriptions, 1, threads=4)
            deliveries = log.deliveries(subscription_ids(1)[0], limit=50)[0]
        finally:
            follower.stop()
            log.store.close()
    return {
        "attempts": count,
        "subscriptions": subscriptions,
        "indexed": indexed,
        "produce_s": round(produce_s, 1),
        "catch_up_s": round(catch_up_s, 1),
        "catch_up_per_s": round(indexed / catch_up_s),
        "catch_up_cpu_s": round(cpu, 1),
        "catch_up_per_cpu_s": round(indexed / cpu),
        "db_mb": round(size / 1e6, 1),
        "db_bytes_per_attempt": round(size / max(indexed, 1)),
        "query_first_page": first_page,
        "query_four_pages": fourth_page,
        "query_first_page_4_threads": few_threads,
        "deliveries_page_rows": len(deliveries),
        "note": f"{QUERIES} queries of attempts(one subscription, limit=50) from {THREADS} "
        "threads (and from 4); four pages: page 1 then 3 more through cursors",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.logindex", description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of 1,000,000")
    args = parser.parse_args(argv)
    with local_broker() as broker:
        result = scenario_l(Run(broker.bootstrap, args.scale))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
