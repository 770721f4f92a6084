"""``python -m bench.ordering [--scenarios 1,2,3] [--scale 1.0] [--nice N] [--pin]``:
issue 15's benchmark.

1. key scope, 1,000 keys, an endpoint answering after 50 ms, max_in_flight 10: the rate
   against 10 / 50 ms = 200/s;
2. 300 events over 60 keys (5 each), each failing twice (retries after 1 s, then 2 s): the time
   to deliver them all against the floor 5 x (1 s + 2 s) = 15 s (keys progress concurrently);
3. tasks parked behind dead endpoints (one endpoint-scoped, one key-scoped over a tenth as many
   keys as tasks): the worker's RSS and its growth per 100,000 parked, while a healthy
   key-scoped endpoint (50 ms, max_in_flight 10, fed at 1.25 x its 200/s on its own input
   topic) keeps its rate.

Numbers are printed and written to ``bench/ordering.json``; nothing is asserted. The worker is
a real ``python -m worker run`` process on the dev broker; receivers run in this process.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.broker import local_broker
from bench.priority import lower_priority, pin
from bench.procstat import rss_mb
from bench.rig import Workers, make_settings, workers
from tests.support.receiver import Receiver, Reply
from tests.support.subs import SubsWriter
from tests.support.worker import metric_in
from worker.config import Settings, parse_retry_delays
from worker.kafka.clients import make_producer
from worker.kafka.writes import produce
from worker.subscriptions.secrets import generate_secret
from worker.subscriptions.store import new_subscription_id

HERE = Path(__file__).resolve().parent
# BENCH_SMALL_BUFFERS=1: librdkafka's prefetch (64 MB per consumer by default) and producer
# queue (1 GB) bounded, to tell the worker's own memory from librdkafka's buffers.
KAFKA_BUFFERS = {"queued.max.messages.kbytes": "16384", "queue.buffering.max.kbytes": "32768"}
DELAY_S = 0.05
CAP = 10


def keyed_event(i: int, workspace: str, key: int) -> dict[str, Any]:
    return {
        "id": f"{workspace}-{i}",
        "event": "contact.updated",
        "workspace": workspace,
        "entity": "contact",
        "record": {"id": key, "name": "Jane Smith", "stage": "proposal"},
    }


def send(settings: Settings, events: Iterable[dict[str, Any]]) -> None:
    """Produce ``events`` keyed by record id (a key's events share an input partition)."""
    producer = make_producer(settings)
    for n, e in enumerate(events):
        topic = settings.input_topic_list()[0]
        produce(producer, topic, orjson.dumps(e), str(e["record"]["id"]).encode())
        if n % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0


def flood(settings: Settings, total: int, keys: int, nice: int = 0) -> None:
    """Scenario 3's flood: half for the endpoint-scoped subscription, half over ``keys``
    (at ``nice``: see ``--nice``)."""
    if nice:
        os.nice(nice)
    half = total // 2
    send(settings, (keyed_event(i, "fifo", i) for i in range(half)))
    send(settings, (keyed_event(i, "keyed", i % keys) for i in range(total - half)))


def paced(settings: Settings, stop: threading.Event) -> None:
    """Events for the healthy endpoint at 1.25 x what it can take (10 / 50 ms): it always has
    work, and its backlog grows slowly enough to stay within the read-ahead budget."""
    producer = make_producer(settings)
    topic = settings.input_topic_list()[-1]
    rate, i, started = 1.25 * CAP / DELAY_S, 0, time.monotonic()
    while not stop.is_set():
        while i < (time.monotonic() - started) * rate:
            e = keyed_event(i, "ok", i % 1000)
            produce(producer, topic, orjson.dumps(e), str(i % 1000).encode())
            i += 1
        producer.poll(0)
        time.sleep(0.01)
    producer.flush(30)


class Successes:
    """Distinct events answered 200 on one endpoint, counted as they arrive: each call reads
    only the requests since the last (re-reading them all every second, 50,000 at full scale,
    held the GIL from the receivers' thread)."""

    def __init__(self, receiver: Receiver, name: str) -> None:
        self._receiver, self._name = receiver, name
        self._seen: set[str] = set()
        self._read = 0

    def __call__(self) -> int:
        new = self._receiver.received(self._name, start=self._read)
        self._read += len(new)
        self._seen.update(r.json["id"] for r in new if r.status_sent == 200)
        return len(self._seen)


def wait(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


SCRAPES: list[float] = []  # seconds each /metrics scrape took (an unanswered one fails the run)


def metrics_text(port: int) -> str:
    asked = time.monotonic()
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    SCRAPES.append(time.monotonic() - asked)
    return text


LOOP_LAG = "webhook_event_loop_lag_seconds_bucket"


def loop_lag_buckets(port: int) -> dict[float, float]:
    """The worker's loop-lag histogram: cumulative count by upper bound."""
    out: dict[float, float] = {}
    for line in metrics_text(port).splitlines():
        if line.startswith(LOOP_LAG + "{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[float(le)] = float(line.split()[-1])
    return out


def loop_lag_summary(before: dict[float, float], after: dict[float, float]) -> dict[str, Any]:
    """p50/p99 (bucket upper bounds) and the bucket of the worst sample between two reads."""
    delta = sorted((le, after.get(le, 0) - before.get(le, 0)) for le in after)
    total = delta[-1][1] if delta else 0
    if not total:
        return {"samples": 0}

    def quantile(q: float) -> float:
        return next(le for le, n in delta if n >= q * total)

    worst = next(le for le, n in delta if n >= total)
    below = max((le for le, _ in delta if le < worst), default=0.0)
    return {
        "samples": int(total),
        "p50_le_s": quantile(0.5),
        "p99_le_s": quantile(0.99),
        "max_between_s": [below, worst],
        "over_20ms": int(total - dict(delta).get(0.02, 0)),
        "over_250ms": int(total - dict(delta).get(0.25, 0)),
    }


@contextmanager
def worker_on(settings: Settings, cpus: set[int] | None) -> Iterator[Workers]:
    """One worker process; with ``cpus`` (``--pin``), each of its threads runs only there: it
    is pinned as it starts, before it starts a thread, and its threads inherit that."""
    with workers(settings) as w:
        if cpus:
            pin(w.pids()[0], cpus)
        yield w


def scenario_1(bootstrap: str, scale: float, cpus: set[int] | None = None) -> dict[str, Any]:
    keys = 1000
    events = [keyed_event(i, "k1", i % keys) for i in range(max(2000, round(10_000 * scale)))]
    settings = make_settings(bootstrap, "ord1", 4)
    with Receiver() as rx:
        secret = generate_secret()
        url = rx.endpoint("hook", secret, lambda n, b: Reply(delay_s=DELAY_S))
        SubsWriter(settings).create("k1", url, ["*"], secret=secret, ordering="key")
        send(settings, events)
        with worker_on(settings, cpus) as w:
            ok = Successes(rx, "hook")
            wait(lambda: ok() >= 1, 120, "no delivery")
            low, high = round(0.1 * len(events)), round(0.9 * len(events))
            wait(lambda: ok() >= low, 600, "slow")
            t0, n0 = time.monotonic(), ok()
            wait(lambda: ok() >= high, 600, "slow")
            seconds, n = time.monotonic() - t0, ok() - n0
            w.check()
        rate = n / seconds
        return {
            "events": len(events),
            "keys": keys,
            "rate_per_s": round(rate, 1),
            "limit_per_s": CAP / DELAY_S,
            "ratio": round(rate / (CAP / DELAY_S), 3),
            "most_concurrent": rx.most_concurrent("hook"),
        }


def scenario_2(bootstrap: str, scale: float, cpus: set[int] | None = None) -> dict[str, Any]:
    delays = parse_retry_delays("1s,2s")
    # Every attempt fails twice: 20 failures in a row would disable the endpoint (not measured).
    settings = make_settings(bootstrap, "ord2", 4, retry_delays_ms=delays, disable_after_failures=0)
    events = [keyed_event(i, "k2", i % 60) for i in range(300)]
    tries: dict[str, int] = {}
    lock = threading.Lock()

    def twice(n: int, body: bytes) -> Reply:
        event_id = orjson.loads(body)["id"]
        with lock:
            tries[event_id] = tries.get(event_id, 0) + 1
            return Reply(status=503 if tries[event_id] <= 2 else 200)

    with Receiver() as rx:
        secret = generate_secret()
        url = rx.endpoint("hook", secret, twice)
        SubsWriter(settings).create("k2", url, ["*"], secret=secret, ordering="key")
        with worker_on(settings, cpus) as w:
            w.wait_ready()
            send(settings, events)
            wait(lambda: len(rx.received("hook")) >= 1, 120, "no delivery")
            started = rx.received("hook")[0].arrived
            ok = Successes(rx, "hook")
            wait(lambda: ok() >= len(events), 600, "not all delivered")
            seconds = max(r.arrived for r in rx.received("hook")) - started
        floor = 5 * sum(delays) / 1000
        return {
            "events": len(events),
            "keys": 60,
            "seconds": round(seconds, 2),
            "floor_s": floor,
            "ratio_to_floor": round(seconds / floor, 3),
            "target_s": 1.5 * floor,
        }


PARTITIONS_3 = 4


def router_lag(text: str, topic: str) -> float:
    """The router's lag on an input topic, summed over its partitions, from a scrape."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("webhook_consumer_lag{") and "router" in line and topic in line
    )


def murmur2(data: bytes) -> int:
    """Kafka's key hash (the Java client's, and librdkafka's ``murmur2_random``)."""
    length, m = len(data), 0x5BD1E995
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = (int.from_bytes(data[i : i + 4], "little") * m) & 0xFFFFFFFF
        k = ((k ^ (k >> 24)) * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail, extra = length & ~3, length % 4
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h = ((h ^ data[tail]) * m) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * m) & 0xFFFFFFFF
    return h ^ (h >> 15)


def sub_id_on(partition: int, partitions: int) -> str:
    """A new subscription id whose ``deliveries`` records land in ``partition``."""
    while True:
        sub_id = new_subscription_id()
        if (murmur2(sub_id.encode()) & 0x7FFFFFFF) % partitions == partition:
            return sub_id


def scenario_3(
    bootstrap: str, scale: float, nice: int = 0, worker_cpus: set[int] | None = None
) -> dict[str, Any]:
    total = round(1_000_000 * scale)
    keys = max(1, round(100_000 * scale))
    settings = make_settings(
        bootstrap,
        "ord3",
        PARTITIONS_3,
        retry_delays_ms=parse_retry_delays("1h"),  # heads wait: their followers stay parked
        disable_after_failures=0,
        max_in_flight_per_workspace=0,
        kafka_properties=dict(KAFKA_BUFFERS) if os.environ.get("BENCH_SMALL_BUFFERS") else {},
        read_ahead_bytes=int(os.environ.get("BENCH_READ_AHEAD_MB", "64")) * 1024 * 1024,
        # The healthy endpoint's events on their own input topic: not queued behind the flood
        # in the router's input (what is measured is the dispatcher's isolation).
        input_topics="bench.ord3.events,bench.ord3.healthy",
    )
    with Receiver() as rx:
        secret = generate_secret()
        dead = rx.endpoint("dead", secret, lambda n, b: Reply(status=503))
        dead_keys = rx.endpoint("deadkeys", secret, lambda n, b: Reply(status=503))
        healthy = rx.endpoint("healthy", secret, lambda n, b: Reply(delay_s=DELAY_S))
        writer = SubsWriter(settings)
        # Each subscription on a partition of its own (BENCH_SHARED=1: the healthy one shares
        # the key-scoped flood's, and waits for the dispatcher to read past the flood there).
        shared = os.environ.get("BENCH_SHARED") == "1"
        placement = {"fifo": 0, "keyed": 1, "ok": 1 if shared else 2}
        ids = {name: sub_id_on(p, PARTITIONS_3) for name, p in placement.items()}
        writer.create("fifo", dead, ["*"], secret=secret, ordering="endpoint", sub_id=ids["fifo"])
        writer.create("keyed", dead_keys, ["*"], secret=secret, ordering="key", sub_id=ids["keyed"])
        writer.create("ok", healthy, ["*"], secret=secret, ordering="key", sub_id=ids["ok"])
        with worker_on(settings, worker_cpus) as w:
            w.wait_ready()
            pid, port = w.pids()[0], w.ports[0]
            stop = threading.Event()
            feeder = threading.Thread(target=paced, args=(settings, stop), daemon=True)
            feeder.start()
            # The healthy endpoint alone first: its rate once warm, and the worker's RSS.
            ok = Successes(rx, "healthy")
            wait(lambda: ok() >= 200, 120, "healthy endpoint idle")
            alone_from, alone_n = time.monotonic(), ok()
            time.sleep(10)
            alone = (ok() - alone_n) / (time.monotonic() - alone_from)
            base = rss_mb(pid)
            scrapes_before = len(SCRAPES)
            lag_before = loop_lag_buckets(port)
            started, healthy_n = time.monotonic(), ok()
            # The flood from a process of its own: producing a million events in this one
            # would take the GIL from the receivers, and slow the healthy endpoint's answers.
            producer = multiprocessing.get_context("spawn").Process(
                target=flood, args=(settings, total, keys, nice), daemon=True
            )
            producer.start()
            # Parked = behind a head: all but the endpoint's first and each key's first.
            expected = total - 1 - keys
            # (seconds, parked, RSS MB, healthy successes, the router's lag on their topic)
            samples: list[tuple[float, float, float, int, float]] = []
            routed: tuple[float, int] | None = None  # (when, healthy successes then)
            # One scrape a second (Prometheus scrapes every 15-30 s; each is rendered on the
            # worker's loop).
            parked_tasks = "webhook_parked_tasks"
            while (parked := metric_in(text := metrics_text(port), parked_tasks)) < expected:
                w.check()
                samples.append(
                    (
                        round(time.monotonic() - started, 1),
                        parked,
                        rss_mb(pid),
                        ok() - healthy_n,
                        router_lag(text, ".healthy"),
                    )
                )
                if routed is None and not producer.is_alive() and router_lag(text, ".events") == 0:
                    routed = (time.monotonic(), ok())
                if time.monotonic() - started > 3600:
                    raise TimeoutError("parking took over an hour")
                # The receivers stand in for remote endpoints: what this process keeps (every
                # request received) goes out of its collector's sight, whose full walks of it
                # (190 ms at 0.3 of the flood) held the healthy endpoint's answers back.
                gc.freeze()
                time.sleep(1)
            parked_s = time.monotonic() - started
            during = (ok() - healthy_n) / parked_s
            # Once the router has routed the flood, only the dispatcher's parking competes.
            after = (
                (ok() - routed[1]) / (time.monotonic() - routed[0])
                if routed is not None and time.monotonic() - routed[0] >= 2
                else None
            )
            time.sleep(5)
            end = rss_mb(pid)
            lag = loop_lag_summary(lag_before, loop_lag_buckets(port))
            stop.set()
        peak = max([end, *(x[2] for x in samples)])
        # Growth per 100,000 parked over the second half of the parking (start-up and the
        # first fill of librdkafka's and the read-ahead's buffers left out).
        mid = next((x for x in samples if x[1] >= expected / 2), samples[0] if samples else None)
        slope = (
            (end - mid[2]) / ((expected - mid[1]) / 100_000)
            if mid is not None and expected > mid[1]
            else None
        )
        return {
            "scale": scale,
            "others_nice": nice,
            "worker_cpus": sorted(worker_cpus or ()),
            "deliveries_partitions": placement,
            "parked": expected,
            "keys": keys,
            "rss_base_mb": round(base, 1),
            "rss_end_mb": round(end, 1),
            "rss_peak_mb": round(peak, 1),
            "growth_mb_per_100k_parked_overall": round((end - base) / (expected / 100_000), 2),
            "growth_mb_per_100k_parked_second_half": round(slope, 2) if slope else None,
            "parking_s": round(parked_s, 1),
            "healthy_alone_per_s": round(alone, 1),
            "healthy_during_per_s": round(during, 1),
            "healthy_ratio": round(during / alone, 3) if alone else None,
            "routed_s": round(routed[0] - started, 1) if routed is not None else None,
            "healthy_after_routing_ratio": round(after / alone, 3) if after and alone else None,
            # Every one of these scrapes (5 s timeout) was answered, or the run failed.
            "metrics_scrapes": len(SCRAPES) - scrapes_before,
            "scrape_s": {
                "p50": round(statistics.median(SCRAPES[scrapes_before:]), 4),
                "max": round(max(SCRAPES[scrapes_before:]), 4),
            },
            "loop_lag": lag,
            "samples": [
                (t, int(p), round(r, 1), n, int(behind))
                for t, p, r, n, behind in samples[:: max(1, len(samples) // 20)]
            ],
        }


SCENARIOS: dict[str, Callable[[str, float, set[int] | None], dict[str, Any]]] = {
    "1": scenario_1,
    "2": scenario_2,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ordering")
    parser.add_argument("--scenarios", default="1,2,3")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--output", type=Path, default=HERE / "ordering.json")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run scenario 3's flood producer (and the broker's threads, which weighs only "
        "within the broker's own session where Linux autogroups are on: bench/priority.py) at "
        "this nice value, so that on a shared machine the worker gets the CPU first (0: off)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="the worker on CPU 0 and everything else (this process and its receivers, "
        "the broker, the flood's producer) on the others: the worker with a core of its own, "
        "as in a deployment where the broker and the load are other machines",
    )
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    worker_cpus: set[int] | None = None
    if args.pin and len(cpus := os.sched_getaffinity(0)) > 1:
        worker_cpus = {min(cpus)}
        os.sched_setaffinity(0, cpus - worker_cpus)  # inherited by the threads started next
    with local_broker() as broker:
        if args.nice:
            for pid in broker.pids:
                lower_priority(pid, args.nice)
        for name in args.scenarios.split(","):
            if name == "3":
                results[name] = scenario_3(broker.bootstrap, args.scale, args.nice, worker_cpus)
            else:
                results[name] = SCENARIOS[name](broker.bootstrap, args.scale, worker_cpus)
            print(name, orjson.dumps(results[name]).decode(), flush=True)
    args.output.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
