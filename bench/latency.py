"""Scenario D: latency at a steady 1,000 events/s, from ``produce()`` to the receiver's arrival.

Events are paced (not a backlog) and stamped with their produce time (``sent``, Unix seconds;
the receiver is on the same clock). The floor reported beside it is one Kafka hop measured in
the same run at the same rate, with the project's own producer and consumer settings: the
worker makes two such hops (input -> router -> ``deliveries`` -> dispatcher) plus the POST.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
from confluent_kafka import Producer

from bench.procstat import CpuMeter, broker_pid
from bench.receivers import AiohttpReceiver
from bench.rig import Workers, event, make_settings, subscribe, workers
from worker.components import Codecs
from worker.config import Settings
from worker.kafka.clients import make_consumer, make_producer
from worker.kafka.scan import scan
from worker.kafka.topics import Topics
from worker.kafka.writes import produce

RATE = 1000
LOW_RATE = 200
WARM_UP_S = 3


def paced(
    producer: Producer,
    topic: str,
    workspaces: list[str],
    seconds: float,
    first: int,
    rate: int = RATE,
) -> tuple[int, float]:
    """Produce ``rate`` events/s for ``seconds``, each stamped with its produce time; returns
    the count and the seconds it took."""
    total = round(rate * seconds)
    start = time.perf_counter()
    for k in range(total):
        wait = start + k / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        ws = workspaces[(first + k) % len(workspaces)]
        produce(producer, topic, orjson.dumps(event(first + k, ws, time.time())), ws.encode())
        producer.poll(0)
    elapsed = time.perf_counter() - start
    assert producer.flush(30) == 0
    return total, elapsed


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99), "max_ms": at(1.0)}


def _wait_count(rx: AiohttpReceiver, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while rx.count() < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {rx.count()} of {expected} arrived in {timeout:.0f}s")
        time.sleep(0.05)


def kafka_hop(bootstrap: str, seconds: float) -> dict[str, float]:
    """One hop, produce() to a group consumer's hand, at RATE events/s."""
    settings = make_settings(bootstrap, "dhop", 6)
    consumer = make_consumer(settings, "bench-dhop")
    consumer.subscribe([settings.input_topics])
    latencies: list[float] = []
    done = threading.Event()

    def consume() -> None:
        # poll(), not consume(n, timeout): consume waits out its timeout unless n arrive.
        while not done.is_set():
            message = consumer.poll(0.05)
            if message is not None and not message.error():
                arrived = time.time()
                latencies.append((arrived - orjson.loads(message.value())["sent"]) * 1000)

    while not consumer.assignment():
        consumer.poll(0.1)
    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    try:
        producer = _producer(settings)
        total, _ = paced(producer, settings.input_topics, ["w"], seconds, 0)
        deadline = time.monotonic() + 30
        while len(latencies) < total and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        done.set()
        thread.join(10)
        consumer.close()
    # The first second includes the consumer's first fetches; it is not the steady state.
    return percentiles(latencies[RATE:])


def _producer(settings: Settings) -> Producer:
    # The project's producer settings (linger.ms=5, librdkafka's default too), as a producing
    # application would have them: the latency starts at produce(), so that wait counts
    # against us. linger.ms=0 was tried: one request per event took the broker from 0.93 to
    # 1.06 cores at 1,000/s and p50 from 39 to 61 ms (Tansu, not the worker, was the limit).
    return make_producer(settings)


def stages(settings: Settings, start_s: float, end_s: float) -> dict[str, dict[str, float]]:
    """Where the time went, for the events produced between ``start_s`` and ``end_s``, from
    the worker's own records: the task's ``created_ms`` (router) and the attempt's
    ``started_ms`` and ``latency_ms`` (dispatcher), all on the machine's one clock."""
    topics = Topics.from_settings(settings)
    codec = Codecs.load().records
    since_ms = int(start_s * 1000) - 1000
    tasks: dict[str, tuple[float, int]] = {}
    for message in scan(settings, topics.deliveries, since_ms):
        task = codec.decode_task(message.value())
        sent = float(orjson.loads(task.body)["sent"])
        if start_s <= sent <= end_s:
            tasks[task.delivery_id] = (sent, task.created_ms)
    routed, queued, http = [], [], []
    for message in scan(settings, topics.attempts, since_ms):
        attempt = codec.decode_attempt(message.value())
        if attempt.delivery_id in tasks:
            sent, created_ms = tasks[attempt.delivery_id]
            routed.append(created_ms - sent * 1000)
            queued.append(attempt.started_ms - created_ms)
            http.append(attempt.latency_ms)
    return {
        "produce_to_routed": percentiles(routed),
        "routed_to_attempt": percentiles(queued),
        "attempt_to_response": percentiles(http),
    }


class _Steady:
    """A worker that has caught up, fed paced events; one measurement per call."""

    def __init__(
        self, settings: Settings, workspaces: list[str], rx: AiohttpReceiver, running: Workers
    ) -> None:
        self.settings, self.workspaces, self.rx, self.running = settings, workspaces, rx, running
        self.producer = _producer(settings)
        self.sent = 0

    def _paced(self, seconds: float, rate: int) -> tuple[int, float]:
        topic = self.settings.input_topics
        total, took = paced(self.producer, topic, self.workspaces, seconds, self.sent, rate)
        self.sent += total
        return total, took

    def warm_up(self) -> None:
        total, _ = self._paced(WARM_UP_S, RATE)
        _wait_count(self.rx, total, 60)

    def measure(self, rate: int, seconds: float) -> dict[str, Any]:
        self.rx.reset()
        broker = broker_pid()
        meter = CpuMeter(
            {
                "worker": self.running.pids(),
                "receiver": self.rx.pids(),
                "broker": [broker] if broker else [],
            }
        )
        meter.start()
        started = time.time()
        total, produced_s = self._paced(seconds, rate)
        ended = time.time()
        _wait_count(self.rx, total, 120)
        cpu = meter.stop()
        latencies = self.rx.latencies_ms()
        return {
            "events": total,
            "produced_per_s": round(total / produced_s),
            "received": len(latencies),
            **percentiles(latencies),
            "stages": stages(self.settings, started, ended),
            "cpu_cores": cpu,
        }


def scenario_d(bootstrap: str, seconds: float) -> dict[str, Any]:
    """At RATE events/s (the target), then at LOW_RATE: whether the latency comes from the
    pipeline's length (it stays at the low rate) or from falling behind (it does not)."""
    rx = AiohttpReceiver(0)
    try:
        settings = make_settings(bootstrap, "d", 6)
        workspaces = [f"wd{i}" for i in range(100)]
        subscribe(settings, rx, workspaces)
        with workers(settings, 1) as w:
            w.wait_ready()
            steady = _Steady(settings, workspaces, rx, w)
            steady.warm_up()
            result = steady.measure(RATE, seconds)
            result["low_rate"] = steady.measure(LOW_RATE, seconds / 2)
        result["kafka_hop"] = kafka_hop(bootstrap, min(seconds, 10))
        result["note"] = "producer linger.ms=5; latency = receiver arrival - produce() time"
        return result
    finally:
        rx.close()
