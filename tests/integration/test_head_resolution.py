"""A head's retry copy is finished only once the tombstone of its head marker is durable.

Finished at once, the delay topic's offset could be committed while the tombstone was still
in the producer's queue; a kill -9 then left a head marker whose retry copy is never read
again, and the restarted owner's lane waited for it for good (the kill-storm test caught an
endpoint-scoped subscription stuck at its 37th of 200 events through four restarts)."""

from __future__ import annotations

from dataclasses import replace

from tests.support.kafka import consume_all
from worker.codec.avro import AvroCodec
from worker.codec.records import RecordCodec
from worker.dispatch.clock import Clock
from worker.dispatch.dedupe import Settled
from worker.dispatch.delivery import Outcome
from worker.dispatch.disabling import FailureTracker
from worker.dispatch.ordering import Work, head_key
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


def test_the_retry_offset_waits_for_the_head_tombstone(settings_factory) -> None:
    settings = settings_factory(partitions=1)
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
    task = DeliveryTask(
        "msg_1", "sub_1", "ws", "e1", "x.y", b"{}", seq=7, ordering="endpoint", ordered=True
    )
    lane_id = ("sub_1", None)
    lane = partitions.lane(0, lane_id)
    copy = replace(task, hop=1, attempt=2)
    lane.set_head(copy)  # a failed attempt made it the head; its copy waits in retry.200ms
    lane.head_marker_durable()
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
