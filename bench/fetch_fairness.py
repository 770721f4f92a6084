"""``python -m bench.fetch_fairness [--flood 200000] [--intake] [librdkafka.key=value ...]``:
does a broker serve a consumer's quiet partitions while another partition it reads has a
backlog?

One consumer reads two topics: ``flood`` (a backlog of ``--flood`` records, produced first in
large batches) and ``calm`` (100 records a second, produced while it reads, each carrying its
send time). It works through the flood at about 30 µs a record, as the router does, and
prints how long the calm records waited. On Tansu 0.6 none arrived while the 30 s flood
drained, or only in its last 5 s (with ``max.partition.fetch.bytes=16384`` or
``queued.max.messages.kbytes=512`` as well); Apache Kafka serves both (docs/ordering.md,
"Measured"). ``--intake`` hands the polled records out as the router does
(:class:`worker.kafka.intake.FairIntake`: a partition at a time in turn, a partition with many
waiting paused) instead of in the client's order. Runs on the benchmarks' broker
(:mod:`bench.broker`).
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid

from confluent_kafka import Consumer, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bench.broker import local_broker
from worker.kafka.intake import FairIntake

WORK_S = 30e-6  # what routing a record costs, roughly


def _produce_flood(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "compression.type": "lz4"})
    for i in range(count):
        while True:
            try:
                producer.produce(topic, b"x" * 200, str(i).encode())
                break
            except BufferError:  # the local queue is full: let the broker catch up
                producer.poll(0.05)
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush()


def measure(
    bootstrap: str, flood: int, extra: dict[str, str], intake: bool = False
) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]
    flood_topic, calm_topic = f"fairness-flood-{run}", f"fairness-calm-{run}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [NewTopic(flood_topic, 4, 1), NewTopic(calm_topic, 4, 1)]
    for future in admin.create_topics(topics).values():
        future.result()
    _produce_flood(bootstrap, flood_topic, flood)
    stop = threading.Event()

    def calm() -> None:
        trickle = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        i = 0
        while not stop.is_set():
            trickle.produce(calm_topic, str(time.time()).encode(), str(i).encode())
            trickle.poll(0)
            i += 1
            time.sleep(0.01)
        trickle.flush()

    sender = threading.Thread(target=calm)
    sender.start()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"fairness-{run}",
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 10,
            **extra,
        }
    )
    consumer.subscribe([flood_topic, calm_topic])
    waits: list[float] = []
    first_calm = None
    done = 0
    start = time.time()

    def handle(message: Message) -> None:
        nonlocal done, first_calm
        if message.error():
            return
        if message.topic() == flood_topic:
            done += 1
            until = time.perf_counter() + WORK_S
            while time.perf_counter() < until:
                pass
        else:
            first_calm = first_calm or time.time() - start
            waits.append(time.time() - float(message.value() or b"0"))

    polled = FairIntake(consumer) if intake else None
    try:
        while done < flood and time.time() - start < 300:
            if polled is None:
                for message in consumer.consume(1000, 0.1):
                    handle(message)
            else:
                polled.add(consumer.consume(1000, 0 if polled else 0.1))
                polled.handle(handle)
    finally:
        stop.set()
        sender.join()
        consumer.close()
    waits.sort()
    return {
        "flood_drained_s": round(time.time() - start, 1),
        "calm_received_while_draining": len(waits),
        "first_calm_at_s": round(first_calm, 1) if first_calm is not None else -1,
        "calm_wait_p50_s": round(waits[len(waits) // 2], 2) if waits else -1,
        "calm_wait_max_s": round(waits[-1], 2) if waits else -1,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fetch_fairness")
    parser.add_argument("--flood", type=int, default=200_000)
    parser.add_argument("--bootstrap", help="an existing broker (default: a fresh dev broker)")
    parser.add_argument("--intake", action="store_true", help="hand records out as the router")
    parser.add_argument("config", nargs="*", help="consumer properties, key=value")
    args = parser.parse_args(argv)
    extra = dict(kv.split("=", 1) for kv in args.config)
    if args.bootstrap:
        results = measure(args.bootstrap, args.flood, extra, args.intake)
    else:
        with local_broker() as broker:
            results = measure(broker.bootstrap, args.flood, extra, args.intake)
    for key, value in results.items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
