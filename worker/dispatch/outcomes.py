"""An attempt's outcome made durable: the ``attempts`` record, then success, a copy in a delay
topic, or a dead letter; for ordered lanes the ``parked`` writes (head markers, parked tasks,
tombstones) in the order that lets a new owner rebuild them (see
:mod:`worker.dispatch.ordering`). A source offset is finished only once its outcome is
acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial

from confluent_kafka import KafkaError, Message, Producer
from opentelemetry.trace import Span

from worker.codec.records import RecordCodec
from worker.dispatch.clock import Clock
from worker.dispatch.dedupe import Settled
from worker.dispatch.delivery import Outcome
from worker.dispatch.disabling import FailureTracker
from worker.dispatch.ordering import HeadRef, Lane, Work, head_key, lane_of, task_key
from worker.dispatch.partitions import Partitions
from worker.dispatch.policy import Next, schedule_retry
from worker.dispatch.rebuild import health_key, progress_key
from worker.dispatch.scheduler import Scheduler
from worker.kafka.offsets import OffsetBook
from worker.kafka.stage import FatalLatch
from worker.kafka.topics import Topics
from worker.kafka.writes import produce
from worker.model import DeadLetter, EndpointHealth
from worker.observability.metrics import Metrics
from worker.observability.spans import deliver_outcome

__all__ = ["Outcomes"]


class Outcomes:
    """Turns outcomes into Kafka writes and finished offsets. A write that fails is latched
    in ``fatal``: the dispatcher stops."""

    def __init__(
        self,
        *,
        retry_delays_ms: tuple[int, ...],
        topics: Topics,
        codec: RecordCodec,
        producer: Producer,
        offsets: OffsetBook,
        partitions: Partitions,
        scheduler: Scheduler,
        failures: FailureTracker,
        settled: Settled,
        metrics: Metrics,
        clock: Clock,
        fatal: FatalLatch,
    ) -> None:
        self._delays = retry_delays_ms
        self._topics = topics
        self._codec = codec
        self._producer = producer
        self._offsets = offsets
        self._partitions = partitions
        self._scheduler = scheduler
        self._failures = failures
        self._settled = settled
        self._metrics = metrics
        self._clock = clock
        self._fatal = fatal

    def on_outcome(self, work: Work, outcome: Outcome, span: Span | None = None) -> None:
        """Make ``outcome`` durable; ``span`` (the attempt's, when traced) ends with it."""
        task = work.task
        verdict = outcome.verdict
        now_ms = self._clock.now_ms()
        plan = None
        if verdict.next is Next.RETRY:
            plan = schedule_retry(task.attempt, self._delays, now_ms, outcome.retry_after_ms)
        if span is not None:
            _trace_outcome(span, outcome, plan.due_ms - now_ms if plan is not None else None)
        record = outcome.attempt
        if record is not None:
            self._health(work, verdict.next is Next.SUCCESS, verdict.disable_endpoint, now_ms)
            if verdict.next is Next.RETRY and plan is None:
                record.outcome = Next.DEAD_LETTER.value
            record.next_attempt_ms = plan.due_ms if plan is not None else None
            self.produce(
                self._topics.attempts,
                work.partition,
                task.subscription_id.encode(),
                self._codec.encode_attempt(record),
            )
        if verdict.next is Next.SUCCESS:
            self._settled.add(task.delivery_id, now_ms)
            self._metrics.delivery_outcome("success")
            if task.event_time_ms:
                self._metrics.end_to_end(max(0.0, (now_ms - task.event_time_ms) / 1000))
            self.advance(work, finish=True)
        elif plan is not None:
            self._retry(work, outcome, self._topics.retry_topic(plan.delay_ms), plan.due_ms)
        elif verdict.next is Next.RETRY:
            self._dead_letter(work, outcome, "retries_exhausted")
        else:
            self._dead_letter(work, outcome, verdict.reason)

    def _health(self, work: Work, success: bool, gone: bool, now_ms: int) -> None:
        """Count the attempt in the endpoint's streak, and record the streak on ``parked`` so
        that a new owner restores it (a tombstone once it ends)."""
        sub_id = work.task.subscription_id
        if success:
            if self._failures.success(sub_id):
                self.produce(self._topics.parked, work.partition, health_key(sub_id), None)
            return
        self._failures.failure(sub_id, now_ms, gone=gone)
        streak = self._failures.streak(sub_id)
        if streak is not None:
            health = EndpointHealth(sub_id, streak[0], streak[1], now_ms)
            value = self._codec.encode_health(health)
            self.produce(self._topics.parked, work.partition, health_key(sub_id), value)

    def _retry(self, work: Work, outcome: Outcome, topic: str, due_ms: int) -> None:
        task = work.task
        copy = replace(
            task,
            hop=task.hop + 1,
            due_ms=due_ms,
            last_status=outcome.status,
            last_error=outcome.error,
        )
        self._metrics.retry_scheduled(topic.rsplit(".", 1)[-1])
        lane_id = lane_of(task)
        if lane_id is None:
            self.produce(
                topic,
                work.partition,
                task.subscription_id.encode(),
                self._codec.encode_task(copy),
                lambda: self.finish(work),
            )
            return
        lane = self._partitions.lane(work.partition, lane_id)
        lane.set_head(copy)
        marker = HeadRef.of(copy)

        def retry_durable() -> None:
            self.produce(
                self._topics.parked,
                work.partition,
                head_key(lane_id),
                self._codec.encode_parked("head", copy),
                head_durable,
            )

        def head_durable() -> None:
            if not self._partitions.current(work):
                return
            held, due = lane.head_marker_durable(marker)
            for waiting in held:
                self.write_parked(waiting, on_ack=partial(self.finish, waiting), lane=lane)
            if work.from_parked:
                self.tombstone(work.partition, task_key(lane_id, task.seq))
            self.finish(work)
            if due is not None:  # the retry copy fell due before its marker was durable
                self._scheduler.add(due)
            self._partitions.settle(work.partition, lane_id, lane)

        self.produce(
            topic,
            work.partition,
            task.subscription_id.encode(),
            self._codec.encode_task(copy),
            retry_durable,
        )

    def _dead_letter(self, work: Work, outcome: Outcome, reason: str) -> None:
        task = work.task
        letter = DeadLetter(
            task=task,
            reason=reason,
            attempts=task.attempt,
            failed_ms=self._clock.now_ms(),
            last_status=outcome.status,
            last_error=outcome.error,
            last_response_body=outcome.response_excerpt,
        )
        self._metrics.dead_letter(reason)
        self._metrics.delivery_outcome("dead_letter")

        def durable() -> None:
            self._settled.add(task.delivery_id, self._clock.now_ms())
            self.advance(work, finish=True)

        self.produce(
            self._topics.dlq,
            work.partition,
            task.subscription_id.encode(),
            self._codec.encode_dead_letter(letter),
            durable,
        )

    def skip_redundant(self, work: Work) -> None:
        """Settle a copy that must not be sent again: as if it had been delivered."""
        self._metrics.duplicate_skipped()
        self.advance(work, finish=True)

    def advance(self, work: Work, *, finish: bool = False) -> None:
        """A task is resolved: for an ordered one, clear its markers and start the lane's next
        task. With ``finish``, its source offset is finished too: once the head marker's
        tombstone is durable when the task was the lane's head. (Finished at once, a delay
        topic's offset could be committed while the tombstone was still queued; a kill then
        left a head marker whose retry copy is never read again, and the lane waited for it
        for good.)"""
        task = work.task
        lane_id = lane_of(task)
        lane = self._partitions.find_lane(work.partition, lane_id) if lane_id else None
        if lane_id is None or lane is None or not self._partitions.current(work):
            if finish:
                self.finish(work)
            return
        if lane.resolved():
            on_ack = partial(self.finish, work) if finish else None
            self.tombstone(work.partition, head_key(lane_id), on_ack)
        elif finish:
            self.finish(work)
        if work.from_parked:
            self.tombstone(work.partition, task_key(lane_id, task.seq))
        nxt = self._partitions.next_work(work.partition, lane_id, lane)
        if nxt is not None:
            self._scheduler.add(nxt)
        else:
            self._partitions.drop_lane_if_idle(work.partition, lane_id)

    def finish(self, work: Work) -> None:
        if work.offset < 0 or not self._partitions.current(work):
            return
        self._offsets.finish(work.topic, work.partition, work.offset)

    # -- Kafka writes ---------------------------------------------------------------------

    def write_parked(
        self, work: Work, on_ack: Callable[[], None], lane: Lane | None = None
    ) -> None:
        """Park a task; once durable, ``lane`` (which parked it) learns where, and drops the
        body from memory."""
        task = work.task
        lane_id = lane_of(task)
        if lane_id is None:
            return
        seq = task.seq

        def durable(offset: int) -> None:
            if lane is not None:
                lane.acked(seq, offset)
            on_ack()
            if lane is not None and self._partitions.current(work):
                self._partitions.settle(work.partition, lane_id, lane)

        self.produce(
            self._topics.parked,
            work.partition,
            task_key(lane_id, seq),
            self._codec.encode_parked("task", task),
            on_offset=durable,
        )

    def write_progress(self) -> None:
        """Record, per owned partition, the finished offsets a restart could read again (from
        the last confirmed commit on), so a new owner after a crash skips them. Best effort:
        a lost record costs duplicates."""
        for topic, partition, ranges in self._partitions.progress(self._offsets):
            value = self._codec.encode_progress(topic, ranges) if ranges else None
            self.produce(self._topics.parked, partition, progress_key(topic), value)

    def spill_unordered(self, work: Work) -> None:
        """A never-started unordered task goes to the first delay topic, due now."""
        copy = replace(work.task, hop=work.task.hop + 1, due_ms=self._clock.now_ms())
        self.produce(
            self._topics.retry[0],
            work.partition,
            work.task.subscription_id.encode(),
            self._codec.encode_task(copy),
            partial(self.finish, work),
        )

    def tombstone(
        self, partition: int, key: bytes, on_ack: Callable[[], None] | None = None
    ) -> None:
        self.produce(self._topics.parked, partition, key, None, on_ack)

    def produce(
        self,
        topic: str,
        partition: int,
        key: bytes,
        value: bytes | None,
        on_ack: Callable[[], None] | None = None,
        on_offset: Callable[[int], None] | None = None,
    ) -> None:
        def report(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                self._fatal.set(f"write to {topic} failed: {err}")
                return
            if on_ack is not None:
                on_ack()
            if on_offset is not None:
                on_offset(msg.offset() or 0)

        produce(self._producer, topic, value, key, report, partition)


def _trace_outcome(span: Span, outcome: Outcome, delay_ms: int | None) -> None:
    """End the attempt's span with what follows it (docs/tracing.md, "Spans")."""
    verdict = outcome.verdict
    if verdict.next is Next.SUCCESS:
        deliver_outcome(span, "delivered")
    elif delay_ms is not None:
        deliver_outcome(span, "retry_scheduled", delay_ms=max(0, delay_ms))
    else:
        reason = "retries_exhausted" if verdict.next is Next.RETRY else verdict.reason
        disabled = reason == "endpoint_disabled"
        deliver_outcome(span, "disabled" if disabled else "dead_lettered", reason=reason)
