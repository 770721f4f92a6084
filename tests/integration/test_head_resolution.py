"""A head's retry copy is finished only once the tombstone of its head marker is durable.

Finished at once, the delay topic's offset could be committed while the tombstone was still
in the producer's queue; a kill -9 then left a head marker whose retry copy is never read
again, and the restarted owner's lane waited for it for good (the kill-storm test caught an
endpoint-scoped subscription stuck at its 37th of 200 events through four restarts)."""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

from confluent_kafka import Producer

from tests.support.kafka import consume_all
from worker.codec.avro import AvroCodec
from worker.codec.records import RecordCodec
from worker.config import Settings
from worker.dispatch.clock import Clock
from worker.dispatch.dedupe import Settled
from worker.dispatch.delivery import Outcome
from worker.dispatch.disabling import FailureTracker
from worker.dispatch.ordering import Decision, HeadRef, Work, head_key, key_digest
from worker.dispatch.outcomes import Outcomes
from worker.dispatch.partitions import Partitions
from worker.dispatch.policy import Next, Verdict
from worker.dispatch.scheduler import Scheduler
from worker.kafka.clients import make_consumer, make_producer
from worker.kafka.offsets import OffsetBook
from worker.kafka.stage import FatalLatch
from worker.kafka.topics import Topics
from worker.model import Attempt, DeliveryTask
from worker.observability.metrics import Metrics


class Rig(NamedTuple):
    settings: Settings
    topics: Topics
    producer: Producer
    partitions: Partitions
    scheduler: Scheduler
    outcomes: Outcomes
    finished: list[Work]


def rig(settings: Settings) -> Rig:
    """Outcomes writing to a real broker, with the offsets it finishes recorded."""
    topics = Topics.from_settings(settings)
    codec = RecordCodec(AvroCodec())
    producer = make_producer(settings)
    clock = Clock()
    settled = Settled(settings.dedupe_window_ms)
    failures = FailureTracker(max_failures=0, max_failing_ms=0, disable=lambda *_: None)
    partitions = Partitions(
        topics=topics,
        codec=codec,
        make_reader=lambda: make_consumer(settings, None),
        settled=settled,
        clock=clock,
        failures=failures,
        lookup=lambda _id: None,
    )
    scheduler = Scheduler(max_in_flight=10, per_workspace=0, clock=clock, lookup=lambda _id: None)
    outcomes = Outcomes(
        retry_delays_ms=settings.retry_delays_ms,
        topics=topics,
        codec=codec,
        producer=producer,
        offsets=OffsetBook(),
        partitions=partitions,
        scheduler=scheduler,
        failures=failures,
        settled=settled,
        metrics=Metrics(),
        clock=clock,
        fatal=FatalLatch(),
    )
    finished: list[Work] = []
    outcomes.finish = finished.append  # type: ignore[method-assign]
    partitions.gen[0] = 1
    return Rig(settings, topics, producer, partitions, scheduler, outcomes, finished)


def test_the_retry_offset_waits_for_the_head_tombstone(settings_factory) -> None:
    settings, topics, producer, partitions, _scheduler, outcomes, finished = rig(
        settings_factory(partitions=1)
    )
    task = DeliveryTask(
        "msg_1", "sub_1", "ws", "e1", "x.y", b"{}", seq=7, ordering="endpoint", ordered=True
    )
    lane_id = ("sub_1", None)
    lane = partitions.lane(0, lane_id)
    copy = replace(task, hop=1, attempt=2)
    lane.set_head(copy)  # a failed attempt made it the head; its copy waits in retry.200ms
    lane.head_marker_durable(HeadRef.of(copy))
    retried = Work(copy, topics.retry[0], 0, 41, gen=1)
    assert lane.on_retry_due(retried).value == "attempt"

    record = Attempt("msg_1", "sub_1", "ws", "e1", "x.y", 2, 0, 1.0, "https://x", "success", 200)
    outcomes.on_outcome(retried, Outcome(Verdict(Next.SUCCESS, "ok"), status=200, attempt=record))
    assert finished == []  # the tombstone is not acknowledged yet
    assert producer.flush(30) == 0
    assert finished == [retried]
    head = [r for r in consume_all(settings.bootstrap_servers, topics.parked) if r.key]
    assert [(r.key, r.value) for r in head if r.key == head_key(lane_id)] == [
        (head_key(lane_id), None)
    ]


def test_a_retry_due_before_its_head_marker_is_durable_is_attempted_after_it(
    settings_factory,
) -> None:
    """During a failover the head marker's write to ``parked`` can take seconds while its
    200 ms retry copy is due. Attempted at once and delivered, the head's tombstone went to
    ``parked`` before the marker, whose late acknowledgement then marked the resolved head
    durable: every later task of the key was parked and never attempted again."""
    settings, topics, producer, partitions, scheduler, outcomes, finished = rig(
        settings_factory(partitions=1)
    )
    first = DeliveryTask(
        "msg_1",
        "sub_1",
        "ws",
        "e1",
        "x.y",
        b"{}",
        seq=7,
        attempt=1,
        ordering="key",
        ordering_key=b"k",
    )
    lane_id = ("sub_1", key_digest(b"k"))
    lane = partitions.lane(0, lane_id)
    assert lane.on_fresh(Work(first, topics.deliveries, 0, 7, gen=1)) is Decision.ATTEMPT
    failed = Attempt("msg_1", "sub_1", "ws", "e1", "x.y", 1, 0, 1.0, "https://x", "failed", 503)
    source = Work(first, topics.deliveries, 0, 7, gen=1)
    outcomes.on_outcome(source, Outcome(Verdict(Next.RETRY, "503"), status=503, attempt=failed))
    assert lane.head is not None and not lane.head_durable
    # The retry copy is read and due before any acknowledgement: it waits for its marker.
    copy = replace(first, hop=1)
    retried = Work(copy, topics.retry[0], 0, 0, gen=1)
    assert lane.on_retry_due(retried) is Decision.HOLD
    assert list(scheduler.ready) == []
    assert producer.flush(30) == 0  # the copy, then its marker, acknowledged
    assert list(scheduler.ready) == [retried] and lane.busy is retried
    assert finished == [source]

    ok = Attempt("msg_1", "sub_1", "ws", "e1", "x.y", 2, 0, 1.0, "https://x", "success", 200)
    outcomes.on_outcome(retried, Outcome(Verdict(Next.SUCCESS, "ok"), status=200, attempt=ok))
    assert producer.flush(30) == 0
    # In parked the marker precedes its tombstone; the key's next task is attempted.
    values = [
        r.value
        for r in consume_all(settings.bootstrap_servers, topics.parked)
        if r.key == head_key(lane_id)
    ]
    assert len(values) == 2 and values[0] is not None and values[1] is None
    following = replace(first, delivery_id="msg_2", event_id="e2", seq=8)
    lane = partitions.lane(0, lane_id)
    assert lane.on_fresh(Work(following, topics.deliveries, 0, 8, gen=1)) is Decision.ATTEMPT
