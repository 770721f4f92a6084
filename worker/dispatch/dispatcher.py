"""The dispatcher: delivery tasks in, signed POSTs out, every outcome made durable.

It consumes ``deliveries`` and every ``retry.<delay>`` topic in one consumer group with range
assignment (so partition *p* of each lands on the same member), attempts deliveries with
bounded concurrency on the event loop, and turns each outcome into Kafka writes
(:mod:`worker.dispatch.outcomes`). A source offset is stored only when that outcome is
acknowledged (see :mod:`worker.kafka.offsets`).

The state lives in its own modules: what may start (:mod:`~worker.dispatch.scheduler`), what is
owned per partition (:mod:`~worker.dispatch.partitions`), how far ahead to read
(:mod:`~worker.dispatch.readahead`) and what to spill when that is too far
(:mod:`~worker.dispatch.spill`); the run loop is :mod:`worker.kafka.stage`. The dispatcher
holds one step of it, the attempt and the drain.

Delay topics are read in order; a record that is not yet due pauses its partition (never a
sleep in the loop) and the partition is resumed when it falls due. Ordered subscriptions go
through :class:`worker.dispatch.ordering.Lane`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from worker.codec.records import RecordCodec
from worker.config import Settings
from worker.dispatch.clock import Clock
from worker.dispatch.dedupe import Settled
from worker.dispatch.delays import DelayQueues
from worker.dispatch.delivery import Attempter
from worker.dispatch.disabling import FailureTracker
from worker.dispatch.ordering import Decision, Work, head_key, lane_of, task_key
from worker.dispatch.outcomes import Outcomes
from worker.dispatch.partitions import Partitions
from worker.dispatch.readahead import POLL_BATCH, ReadAhead
from worker.dispatch.readback import ReadBack
from worker.dispatch.scheduler import Scheduler
from worker.dispatch.spill import Spiller, hand_over
from worker.kafka.lag import LagReporter
from worker.kafka.offsets import OffsetBook
from worker.kafka.slices import Slices
from worker.kafka.stage import FatalLatch, StageLoop
from worker.kafka.topics import Topics
from worker.memory import release_free_memory
from worker.observability.metrics import Metrics
from worker.observability.spans import Spans, deliver_outcome
from worker.subscriptions.model import Subscription

__all__ = [
    "POLL_BATCH",
    "Dispatcher",
    "head_key",
    "task_key",
]

log = logging.getLogger(__name__)
PROGRESS_INTERVAL_S = 0.5  # how often finished-past-commit offsets are recorded
HOUSEKEEPING_INTERVAL_S = 0.2
TRIM_INTERVAL_S = 10.0


class Dispatcher:
    """Owns the dispatcher consumer loop. Built and wired by :mod:`worker.app`."""

    def __init__(
        self,
        *,
        settings: Settings,
        topics: Topics,
        consumer: Consumer,
        offsets: OffsetBook,
        producer: Producer,
        make_reader: Callable[[], Consumer],
        codec: RecordCodec,
        attempter: Attempter,
        lookup: Callable[[str], Subscription | None],
        failures: FailureTracker,
        metrics: Metrics,
        heartbeat: Callable[[], None] = lambda: None,
        clock: Clock | None = None,
        spans: Spans | None = None,
    ) -> None:
        self._settings = settings
        self._spans = spans  # None: tracing off, no span is made
        self._topics = topics
        self._consumer = consumer
        self._producer = producer
        self._codec = codec
        self._attempter = attempter
        self._metrics = metrics
        self._clock = clock = clock or Clock()
        self._offsets = offsets  # the consumer's on_commit callback feeds it
        # Deliveries that settled (2xx or durable dead letter), and those being attempted:
        # another copy of one of them is not sent (see worker.dispatch.dedupe).
        self._settled = Settled(settings.dedupe_window_ms)
        self._flying: dict[str, Work] = {}
        self._fatal = FatalLatch()
        self._partitions = Partitions(
            topics=topics,
            codec=codec,
            make_reader=make_reader,
            settled=self._settled,
            clock=clock,
            failures=failures,
            lookup=lookup,
        )
        self._scheduler = Scheduler(
            max_in_flight=settings.max_in_flight,
            per_workspace=settings.max_in_flight_per_workspace,
            clock=clock,
            lookup=lookup,
            tally=self._partitions.tally,
        )
        self._outcomes = Outcomes(
            retry_delays_ms=settings.retry_delays_ms,
            topics=topics,
            codec=codec,
            producer=producer,
            offsets=offsets,
            partitions=self._partitions,
            scheduler=self._scheduler,
            failures=failures,
            settled=self._settled,
            metrics=metrics,
            clock=clock,
            fatal=self._fatal,
        )
        self._read_ahead = ReadAhead(
            consumer=consumer,
            budget=settings.read_ahead_bytes,
            max_in_flight=settings.max_in_flight,
            clock=clock,
            metrics=metrics,
            tally=self._partitions.tally,
            deliveries=self._deliveries_partitions,
        )
        self._spiller = Spiller(
            partitions=self._partitions,
            scheduler=self._scheduler,
            outcomes=self._outcomes,
            lookup=lookup,
            max_in_flight=settings.max_in_flight,
            metrics=metrics,
        )
        self._read_back = ReadBack(
            make_reader=make_reader,
            topic=topics.parked,
            codec=codec,
            partitions=self._partitions,
            start=self._scheduler.add,
        )
        self._delayed = DelayQueues(consumer)
        self._started: set[int] = set()  # id() of works whose attempt has started
        self._draining = False  # drain() began: attempts that end start nothing new
        self._in_flight: set[asyncio.Task[None]] = set()
        self._polled: Slices[Message] = Slices()  # the last poll's records, handled a slice a step
        self._wake = asyncio.Event()  # ends a nap early: an attempt finished
        self._assigned = False
        self._next_progress = 0.0
        self._next_housekeeping = 0.0
        self._next_trim = 0.0
        self._loop = StageLoop(
            name="dispatcher",
            consumer=consumer,
            producer=producer,
            offsets=offsets,
            lag=LagReporter(consumer, f"{settings.group_id}-dispatcher", metrics),
            fatal=self._fatal,
            heartbeat=heartbeat,
            wake=self._wake,
        )

    # -- public surface ---------------------------------------------------------------

    @property
    def assigned(self) -> bool:
        return self._assigned

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self._loop.run(self, list(self._topics.dispatch_inputs), stop)
        finally:
            self._read_back.close()

    # -- the loop -----------------------------------------------------------------------

    def step(self) -> bool:
        """One pass (run by :class:`~worker.kafka.stage.StageLoop`, which then stores offsets,
        reports lag and naps when nothing happened)."""
        if not self._polled:
            self._polled.add(self._consumer.consume(self._read_ahead.batch(), timeout=0))
        handled = self._polled.handle(self._on_message)
        self._producer.poll(0)
        self._scheduler.release_due()
        self._delayed.release(self._clock.now_ms(), self._on_retry_due)
        self._spiller.resume()
        read_back = self._read_back.step()
        self._start_ready()
        self._read_ahead.check(self._spiller.spill)
        self._spiller.write()
        now = self._clock.monotonic()
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + HOUSEKEEPING_INTERVAL_S
            self._settled.expire(self._clock.now_ms())
            self._metrics.parked(self._partitions.parked_count())
            self._report_retry_age()
        if now >= self._next_progress:
            self._next_progress = now + PROGRESS_INTERVAL_S
            self._outcomes.write_progress()
        if now >= self._next_trim:
            self._next_trim = now + TRIM_INTERVAL_S
            release_free_memory()  # after a flood, RSS follows what is held again
        return handled > 0 or read_back

    def _on_message(self, message: Message) -> None:
        begun = self._offsets.begin(message)
        if begun is None:
            return
        topic, partition, offset, tracker = begun
        if self._partitions.skip(topic, partition, offset):
            tracker.finish(offset)
            return
        try:
            task = self._codec.decode_task(message.value())
        except Exception as exc:  # our own topic: unreadable records are skipped, loudly
            log.error("undecodable task at %s/%d/%d: %s", topic, partition, offset, exc)
            tracker.finish(offset)
            return
        work = Work(task, topic, partition, offset, gen=self._partitions.generation(partition))
        if topic == self._topics.deliveries:
            task.seq = offset
            self._on_fresh(work)
        else:
            self._delayed.add(work, self._clock.now_ms())

    def _on_fresh(self, work: Work) -> None:
        task = work.task
        if task.scope != "none":
            # The subscription's scope changed while lanes of the old one still hold work:
            # they drain in the old order first, and new tasks follow the old scope until then.
            held = self._partitions.held_scope(work.partition, task.subscription_id)
            if held is not None and held != task.scope:
                task.ordering = held
        lane_id = lane_of(task)
        if lane_id is None:
            self._scheduler.add(work)
            return
        lane = self._partitions.lane(work.partition, lane_id)
        decision = lane.on_fresh(work)
        if decision is Decision.ATTEMPT:
            self._scheduler.add(work)
        elif decision is Decision.PARK:
            self._outcomes.write_parked(
                work, on_ack=partial(self._outcomes.finish, work), lane=lane
            )
        elif decision is Decision.DROP:
            self._outcomes.finish(work)

    def _on_retry_due(self, work: Work) -> None:
        lane_id = lane_of(work.task)
        if lane_id is None:
            self._scheduler.add(work)
            return
        lane = self._partitions.find_lane(work.partition, lane_id)
        decision = lane.on_retry_due(work) if lane is not None else Decision.DROP
        if decision is Decision.ATTEMPT:
            self._scheduler.add(work)
            return
        if decision is Decision.HOLD:
            return  # attempted once its head marker is durable
        self._outcomes.finish(work)  # a stale copy
        if lane is not None:
            self._partitions.settle(work.partition, lane_id, lane)  # unpacked by the lookup

    def _start_ready(self, keep_one: bool = False) -> Work | None:
        """Start every work that may start now, each in a task of its own; with ``keep_one``
        the first is returned instead, for the caller's task to attempt."""
        loop = asyncio.get_running_loop()
        kept: Work | None = None
        for work in self._scheduler.starts(self._admit):
            self._started.add(id(work))
            self._flying[work.task.delivery_id] = work
            if keep_one and kept is None:
                kept = work
                continue
            job = loop.create_task(self._attempt(work))
            self._in_flight.add(job)
            job.add_done_callback(self._in_flight.discard)
        self._metrics.set_in_flight(len(self._in_flight))
        return kept

    def _admit(self, work: Work) -> bool:
        """A work may take a slot: its generation is current and it is not redundant (another
        copy of the delivery settled or is being attempted; re-drives excepted)."""
        if not self._partitions.current(work):
            return False
        task = work.task
        if task.redrive_id is not None or self._settled.window_ms <= 0:
            return True
        other = self._flying.get(task.delivery_id)
        if task.delivery_id in self._settled or (
            other is not None and self._partitions.current(other)
        ):
            log.debug("%s already settled or in flight: not sent again", task.delivery_id)
            self._outcomes.skip_redundant(work)
            return False
        return True

    async def _attempt(self, work: Work) -> None:
        """Attempt ``work``, then the next work that may start, and so on, in this task."""
        next_work: Work | None = work
        while next_work is not None:
            next_work = await self._attempt_one(next_work)

    async def _attempt_one(self, work: Work) -> Work | None:
        span = self._spans.deliver(work.task) if self._spans is not None else None
        try:
            outcome = await self._attempter.attempt(work.task, span)
        except Exception:  # a bug must not wedge the lane: treat as a network failure
            log.exception("attempt crashed for %s", work.task.delivery_id)
            outcome = self._attempter.crashed(work.task)
        finally:
            if self._flying.get(work.task.delivery_id) is work:
                del self._flying[work.task.delivery_id]
            self._wake.set()
            self._scheduler.ended(work)
        self._started.discard(id(work))
        if not self._partitions.current(work):
            if span is not None:
                deliver_outcome(span, "revoked")
            return None  # revoked meanwhile: the new owner replays it
        self._outcomes.on_outcome(work, outcome, span)
        if self._draining:
            return None
        # The lane's next task (or the next one waiting for this slot) starts now, not at the
        # next step, and in this task: a new task's first step, like a step of the
        # dispatcher, waits behind the router's and the other callbacks on the loop.
        return self._start_ready(keep_one=True)

    def _report_retry_age(self) -> None:
        """Per delay topic: how long its oldest due record has waited past its due time."""
        now = self._clock.now_ms()
        oldest: dict[str, float] = {topic.rsplit(".", 1)[-1]: 0.0 for topic in self._topics.retry}
        for topic, seconds in self._delayed.overdue(now):
            delay = topic.rsplit(".", 1)[-1]
            oldest[delay] = max(oldest[delay], seconds)
        for delay, seconds in oldest.items():
            self._metrics.oldest_due_retry(delay, seconds)

    def _deliveries_partitions(self) -> list[TopicPartition]:
        return [TopicPartition(self._topics.deliveries, p) for p in self._partitions.owned]

    # -- assignment -----------------------------------------------------------------------

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Assign here (not after the callback) so the partitions can be resumed: librdkafka
        # keeps a partition's pause flag across rebalances, and a partition we paused before
        # losing it must start fetching again when it comes back.
        consumer.assign(partitions)
        consumer.resume(partitions)
        for key in self._partitions.assign([tp.partition for tp in partitions]):
            self._spiller.defer(key)  # resumed as their subscriptions have room
        self._read_ahead.reset()
        self._assigned = True

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._outcomes.write_progress()
        self._producer.flush(10)
        self._offsets.commit(consumer)
        self.on_lost(consumer, partitions)

    def on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Forget the partitions. Lost (not revoked): the session expired, another member may
        own them, so no commit and no flush on the loop; queued writes go out later."""
        gone = {tp.partition for tp in partitions}
        self._offsets.drop(gone)
        self._delayed.drop(gone)
        self._partitions.lose(gone)
        self._scheduler.drop(gone)
        self._spiller.drop(gone)
        self._assigned = bool(self._partitions.gen)

    # -- shutdown -------------------------------------------------------------------------

    async def drain(self) -> None:
        """Stop starting work, let in-flight attempts finish within the deadline, spill
        what never started, and settle every write."""
        deadline = self._settings.shutdown_timeout_ms / 1000
        self._draining = True
        if self._in_flight:
            _done, pending = await asyncio.wait(set(self._in_flight), timeout=deadline)
            for job in pending:
                job.cancel()
        self._spiller.write_all()
        hand_over(self._scheduler, self._partitions, self._outcomes, self._started)
        self._outcomes.write_progress()
        self._producer.flush(max(1.0, deadline))
