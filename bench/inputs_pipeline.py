"""``python -m bench.inputs_pipeline [--records N] [--rounds R]``: the router's throughput per
input format through a real broker, as a ratio to the native envelope in the same run
(issue 25: every format >= 0.8; Schema Registry with a warm cache).

The router (:class:`worker.router.Router`, built as :mod:`worker.app` builds it) reads ``N``
records of one format from the start of its topic and writes one delivery task each (one
subscription matches). Throughput is records per CPU second of the process (librdkafka's
threads included) from the first step to the last task acknowledged: a router is CPU-bound
when it is behind, and on a shared machine wall time mostly measures the neighbours and the
fetch round trips (one run measured the envelope both slower and faster than Debezium). A
local Apache Kafka node is started (:mod:`bench.broker`: ``BENCH_BROKER``, ``BENCH_BOOTSTRAP``);
each format runs right after an envelope run, ``--rounds`` times; the ratio is the median of
the pairs' (best CPU seconds are printed too). Prints a table and writes
``bench/inputs-pipeline.json``.
"""

from __future__ import annotations

import statistics
import time
import uuid
from pathlib import Path

import orjson
from confluent_kafka import OFFSET_BEGINNING, Message, TopicPartition

from bench.broker import local_broker
from bench.inputs import INPUT_TOPICS, SUBSCRIPTION, arguments, mapping_file, messages
from tests.support.schema_registry import SchemaRegistryStandIn
from tests.support.topics import create_topics
from worker.app import input_decoder
from worker.components import Codecs
from worker.config import Settings
from worker.kafka.clients import make_consumer, make_producer
from worker.kafka.topics import Topics
from worker.observability.metrics import Metrics
from worker.router import Router
from worker.subscriptions.index import SubscriptionIndex

HERE = Path(__file__).resolve().parent
STALL_S = 60.0  # no record routed for this long: the run fails instead of waiting forever


def fill(settings: Settings, samples: dict[str, Message], n: int) -> None:
    producer = make_producer(settings)
    for message in samples.values():
        for _ in range(n):
            while True:
                try:
                    producer.produce(
                        message.topic() or "",
                        message.value(),
                        message.key(),
                        headers=message.headers() or [],
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
    assert producer.flush(60) == 0


def route_all(settings: Settings, index: SubscriptionIndex, topic: str, n: int) -> float:
    """CPU seconds (every thread of the process: librdkafka's included) a fresh router
    spends routing the ``n`` records of ``topic``."""
    codecs = Codecs.load()
    producer = make_producer(settings)
    consumer = make_consumer(settings, f"bench-{uuid.uuid4().hex}")
    router = Router(
        settings=settings,
        topics=Topics.from_settings(settings),
        consumer=consumer,
        producer=producer,
        inputs=input_decoder(settings, codecs, None),
        codec=codecs.records,
        index=index,
        metrics=Metrics(),
        table_ready=lambda: True,
    )
    # The first record fetchable before the clock starts, read by another consumer. This one
    # used to read it and seek back; one run then stalled at 2,000 of 20,000 records, and a
    # seek followed at once by the intake's pause and resume is the suspect (librdkafka's
    # seek, pause and resume are asynchronous, each a new version of the partition's state).
    first = make_consumer(settings, f"bench-{uuid.uuid4().hex}")
    first.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    while not first.consume(1, timeout=1.0):
        pass
    first.close()
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    start = time.process_time()
    done = 0
    progressed, last = time.monotonic(), 0
    while done < n:
        if not router.step():
            # Nothing fetched yet: nap as the stage loop does (worker.kafka.pacing), so the
            # CPU counted is routing, not spinning on an empty fetch queue.
            time.sleep(0.001)
        producer.poll(0)
        router._fatal.check()  # a failed write stops a worker's stage: here, the bench
        done = router._offsets.tracker(topic, 0).committable() or 0
        if done != last:
            progressed, last = time.monotonic(), done
        elif time.monotonic() - progressed > STALL_S:
            raise RuntimeError(f"routing {topic}: stuck at {done} of {n} for {STALL_S:.0f} s")
    producer.flush(30)
    elapsed = time.process_time() - start
    consumer.close()
    return elapsed


def main(argv: list[str] | None = None) -> None:
    args = arguments("python -m bench.inputs_pipeline", 3).parse_args(argv)
    registry = SchemaRegistryStandIn().start()
    best: dict[str, float] = {}
    ratios: dict[str, list[float]] = {}
    name_of_broker = ""
    try:
        with local_broker() as broker, mapping_file() as path:
            settings = Settings.from_env(
                {},
                bootstrap_servers=broker.bootstrap,
                topic_prefix=f"bench{uuid.uuid4().hex[:6]}.",
                inputs=path,
                input_topics=INPUT_TOPICS,
                schema_registry_url=registry.url,
            )
            create_topics(settings, 1)
            samples = messages(registry.url)
            fill(settings, samples, args.records)
            index = SubscriptionIndex()
            index.upsert(SUBSCRIPTION)
            name_of_broker = broker.name
            # Each format right after an envelope run: the pair shares the machine's load of
            # the moment (other jobs come and go), and the ratio is the pair's.
            for _ in range(args.rounds):
                for name, message in samples.items():
                    if name == "envelope":
                        continue
                    envelope = route_all(settings, index, "events", args.records)
                    seconds = route_all(settings, index, message.topic() or "", args.records)
                    ratios.setdefault(name, []).append(envelope / seconds)
                    best["envelope"] = min(best.get("envelope", float("inf")), envelope)
                    best[name] = min(best.get(name, float("inf")), seconds)
    finally:
        registry.stop()
    rows = [
        {
            "format": name,
            "records_per_cpu_s": round(args.records / s),
            "ratio": round(statistics.median(ratios[name]), 2) if name in ratios else 1.0,
            "ratios": [round(r, 2) for r in ratios.get(name, [])],
        }
        for name, s in best.items()
    ]
    print(f"{'format':<24} {'per CPU s':>10} {'vs envelope (median of pairs)':>30}")
    for row in rows:
        print(
            f"{row['format']:<24} {row['records_per_cpu_s']:>10} {row['ratio']:>8}  {row['ratios']}"
        )
    (HERE / "inputs-pipeline.json").write_bytes(
        orjson.dumps(
            {
                "broker": name_of_broker,
                "records": args.records,
                "rounds": args.rounds,
                "results": rows,
            },
            option=orjson.OPT_INDENT_2,
        )
    )


if __name__ == "__main__":
    main()
