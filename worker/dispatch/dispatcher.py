"""The dispatcher: delivery tasks in, signed POSTs out, every outcome made durable.

It consumes ``deliveries`` and every ``retry.<delay>`` topic in one consumer group with range
assignment (so partition *p* of each lands on the same member), attempts deliveries with
bounded concurrency on the event loop, and turns each outcome into Kafka writes: an
``attempts`` record, then success, a copy in a delay topic, or a dead letter. A source offset
is stored only when that outcome is acknowledged (see :mod:`worker.kafka.offsets`).

Delay topics are read in order; a record that is not yet due pauses its partition (never a
sleep in the loop) and the partition is resumed when it falls due. Ordered subscriptions go
through :class:`worker.dispatch.ordering.Lane`.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from worker.codec.records import RecordCodec
from worker.config import Settings
from worker.dispatch.dedupe import Settled, read_settled
from worker.dispatch.delays import DelayQueues
from worker.dispatch.delivery import Attempter, Outcome
from worker.dispatch.disabling import FailureTracker
from worker.dispatch.limits import RateLimiter, WorkspaceSlots
from worker.dispatch.ordering import Decision, Lane, Work
from worker.dispatch.policy import Next, schedule_retry
from worker.dispatch.rebuild import progress_key, read_parked
from worker.kafka.clients import close_consumer
from worker.kafka.lag import LagReporter
from worker.kafka.offsets import MAX_RANGES, OffsetBook, expand_ranges, ranges_of
from worker.kafka.pacing import IdlePacer
from worker.kafka.topics import Topics
from worker.kafka.writes import produce
from worker.model import DeadLetter
from worker.observability.metrics import Metrics
from worker.subscriptions.model import Subscription

__all__ = ["Dispatcher"]

log = logging.getLogger(__name__)
PROGRESS_INTERVAL_S = 0.5  # how often finished-past-commit offsets are recorded

TP = tuple[str, int]
POLL_BATCH = 500
# Past FULL_SPEED_READ_AHEAD x max-in-flight unstarted tasks every attempt slot has work queued:
# read on (to find endpoints not seen yet) only TRICKLE_BATCH a step, leaving the CPU to the
# attempts in flight (and to a router on the same loop), up to the memory budget.
FULL_SPEED_READ_AHEAD = 8
TRICKLE_BATCH = 50
# What a task held in memory costs beyond its body: the decoded record's other fields and
# Python objects (measured ~670 B with tracemalloc), rounded up.
HELD_TASK_OVERHEAD = 1024


def held_bytes(work: Work) -> int:
    """The estimated memory of one task read but not started."""
    return len(work.task.body) + HELD_TASK_OVERHEAD


def head_key(sub_id: str) -> bytes:
    return f"head/{sub_id}".encode()


def task_key(sub_id: str, seq: int) -> bytes:
    return f"task/{sub_id}/{seq:020d}".encode()


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
    ) -> None:
        self._settings = settings
        self._topics = topics
        self._consumer = consumer
        self._producer = producer
        self._make_reader = make_reader
        self._codec = codec
        self._attempter = attempter
        self._metrics = metrics
        self._heartbeat = heartbeat
        self._lookup = lookup
        self._failures = failures
        self._slots = WorkspaceSlots(settings.max_in_flight_per_workspace)
        self._rates = RateLimiter()
        self._ws_waiting: dict[str, deque[Work]] = {}
        self._timed: list[tuple[float, int, Work]] = []  # rate-limited starts (heap)
        self._timed_seq = itertools.count()
        self._gen: dict[int, int] = {}
        self._generations = 0
        self._lanes: dict[int, dict[str, Lane]] = {}
        self._offsets = offsets  # the consumer's on_commit callback feeds it
        # Offsets a previous owner finished past its commit: skipped, not sent again.
        self._skip: dict[tuple[str, int], set[int]] = {}
        # Deliveries that settled (2xx or durable dead letter), and those being attempted:
        # another copy of one of them is not sent (see worker.dispatch.dedupe).
        self._settled = Settled(settings.dedupe_window_ms)
        self._flying: dict[str, Work] = {}
        self._next_progress = 0.0
        self._delayed = DelayQueues(consumer)
        self._ready: deque[Work] = deque()
        self._started: set[int] = set()  # id() of works whose attempt has started
        self._in_flight: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()  # ends a nap early: an attempt finished
        self._pacer = IdlePacer()
        self._fatal: str | None = None
        self._assigned = False
        self._backpressure = False
        # Unstarted works (their held_bytes, and how many), as last counted plus the fresh
        # ones read since: an upper bound between counts.
        self._held = 0
        self._held_tasks = 0
        self._next_count = 0.0
        self._next_housekeeping = 0.0
        self._next_lag_report = 0.0
        self._lag = LagReporter(consumer, f"{settings.group_id}-dispatcher", metrics)

    # -- public surface ---------------------------------------------------------------

    @property
    def assigned(self) -> bool:
        return self._assigned

    async def run(self, stop: asyncio.Event) -> None:
        self._consumer.subscribe(
            list(self._topics.dispatch_inputs),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        try:
            while not stop.is_set():
                self._heartbeat()
                pause = self._pacer.pause(self._step())
                if self._fatal:
                    raise RuntimeError(self._fatal)
                if pause:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), pause)
                else:
                    await asyncio.sleep(0)
            await self._drain()
        finally:
            self._close()

    # -- the loop -----------------------------------------------------------------------

    def _step(self) -> bool:
        full_speed = self._held_tasks < FULL_SPEED_READ_AHEAD * self._settings.max_in_flight
        messages = self._consumer.consume(POLL_BATCH if full_speed else TRICKLE_BATCH, timeout=0)
        for message in messages:
            self._on_message(message)
        self._producer.poll(0)
        self._release_due()
        self._start_ready()
        now = time.monotonic()
        if (
            not self._backpressure
            and self._held > self._settings.read_ahead_bytes
            and now >= self._next_count
        ):
            self._next_count = now + 0.02  # a count walks every held task: not every step
            self._apply_backpressure()  # now, not at housekeeping: fetches can be large
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + 0.2
            self._settled.expire(_now_ms())
            self._apply_backpressure()
            self._metrics.parked(self._parked_count())
            self._report_retry_age()
        if now >= self._next_progress:
            self._next_progress = now + PROGRESS_INTERVAL_S
            self._write_progress()
        if now >= self._next_lag_report:
            self._next_lag_report = now + 2.0
            self._lag.report()
        self._offsets.store(self._consumer)
        return bool(messages)

    def _on_message(self, message: Message) -> None:
        begun = self._offsets.begin(message)
        if begun is None:
            return
        topic, partition, offset, tracker = begun
        skip = self._skip.get((topic, partition))
        if skip and offset in skip:
            skip.discard(offset)
            tracker.finish(offset)
            return
        try:
            task = self._codec.decode_task(message.value())
        except Exception as exc:  # our own topic: unreadable records are skipped, loudly
            log.error("undecodable task at %s/%d/%d: %s", topic, partition, offset, exc)
            tracker.finish(offset)
            return
        work = Work(task, topic, partition, offset, gen=self._gen.get(partition, 0))
        if topic == self._topics.deliveries:
            task.seq = offset
            self._held += held_bytes(work)
            self._held_tasks += 1
            self._on_fresh(work)
        else:
            self._delayed.add(work, _now_ms())

    def _on_fresh(self, work: Work) -> None:
        task = work.task
        if not task.ordered:
            self._ready.append(work)
            return
        lane = self._lane(work.partition, task.subscription_id)
        decision = lane.on_fresh(work)
        if decision is Decision.ATTEMPT:
            self._ready.append(work)
        elif decision is Decision.PARK:
            self._write_parked(work, on_ack=lambda: self._finish(work))
        elif decision is Decision.DROP:
            self._finish(work)

    def _release_due(self) -> None:
        timed, clock = self._timed, time.monotonic()
        while timed and timed[0][0] <= clock:
            self._ready.append(heapq.heappop(timed)[2])
        self._delayed.release(_now_ms(), self._on_retry_due)

    def _on_retry_due(self, work: Work) -> None:
        task = work.task
        if not task.ordered:
            self._ready.append(work)
            return
        lane = self._lane(work.partition, task.subscription_id)
        if lane.on_retry_due(work) is Decision.ATTEMPT:
            self._ready.append(work)
        else:
            self._finish(work)

    def _start_ready(self) -> None:
        limit = self._settings.max_in_flight
        now = time.monotonic()
        while self._ready and len(self._in_flight) < limit:
            work = self._ready.popleft()
            if work.gen != self._gen.get(work.partition, -1):
                continue
            if self._redundant(work):
                self._skip_redundant(work)
                continue
            workspace = work.task.workspace
            if not self._slots.try_take(workspace):
                self._ws_waiting.setdefault(workspace, deque()).append(work)
                continue
            sub = self._lookup(work.task.subscription_id)
            wait = self._rates.delay(sub.id, sub.rate_limit, now) if sub is not None else 0.0
            if wait > 0:
                self._slots.give_back(workspace)
                heapq.heappush(self._timed, (now + wait, next(self._timed_seq), work))
                continue
            self._started.add(id(work))
            self._flying[work.task.delivery_id] = work
            job = asyncio.get_running_loop().create_task(self._attempt(work))
            self._in_flight.add(job)
            job.add_done_callback(self._in_flight.discard)
        self._metrics.set_in_flight(len(self._in_flight))

    def _slot_freed(self, workspace: str) -> None:
        self._slots.give_back(workspace)
        waiting = self._ws_waiting.get(workspace)
        if waiting:
            self._ready.appendleft(waiting.popleft())
            if not waiting:
                del self._ws_waiting[workspace]

    async def _attempt(self, work: Work) -> None:
        try:
            outcome = await self._attempter.attempt(work.task)
        except Exception:  # a bug must not wedge the lane: treat as a network failure
            log.exception("attempt crashed for %s", work.task.delivery_id)
            outcome = self._attempter.crashed(work.task)
        finally:
            if self._flying.get(work.task.delivery_id) is work:
                del self._flying[work.task.delivery_id]
            self._wake.set()
            self._slot_freed(work.task.workspace)
        self._started.discard(id(work))
        if work.gen != self._gen.get(work.partition, -1):
            return  # revoked meanwhile: the new owner replays it
        self._on_outcome(work, outcome)

    # -- outcomes -------------------------------------------------------------------------

    def _on_outcome(self, work: Work, outcome: Outcome) -> None:
        task = work.task
        verdict = outcome.verdict
        plan = None
        if verdict.next is Next.RETRY:
            plan = schedule_retry(
                task.attempt, self._settings.retry_delays_ms, _now_ms(), outcome.retry_after_ms
            )
        record = outcome.attempt
        if record is not None:
            if verdict.next is Next.SUCCESS:
                self._failures.success(task.subscription_id)
            else:
                self._failures.failure(
                    task.subscription_id, _now_ms(), gone=verdict.disable_endpoint
                )
            if verdict.next is Next.RETRY and plan is None:
                record.outcome = Next.DEAD_LETTER.value
            record.next_attempt_ms = plan.due_ms if plan is not None else None
            self._produce(
                self._topics.attempts,
                work.partition,
                task.subscription_id.encode(),
                self._codec.encode_attempt(record),
            )
        if verdict.next is Next.SUCCESS:
            self._settled.add(task.delivery_id, _now_ms())
            self._metrics.delivery_outcome("success")
            if task.event_time_ms:
                self._metrics.end_to_end(max(0.0, (_now_ms() - task.event_time_ms) / 1000))
            self._finish(work)
            self._advance(work)
        elif plan is not None:
            self._retry(work, outcome, self._topics.retry_topic(plan.delay_ms), plan.due_ms)
        elif verdict.next is Next.RETRY:
            self._dead_letter(work, outcome, "retries_exhausted")
        else:
            self._dead_letter(work, outcome, verdict.reason)

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
        if not task.ordered:
            self._produce(
                topic,
                work.partition,
                task.subscription_id.encode(),
                self._codec.encode_task(copy),
                lambda: self._finish(work),
            )
            return
        lane = self._lane(work.partition, task.subscription_id)
        lane.set_head(copy)

        def retry_durable() -> None:
            self._produce(
                self._topics.parked,
                work.partition,
                head_key(task.subscription_id),
                self._codec.encode_parked("head", copy),
                head_durable,
            )

        def head_durable() -> None:
            if work.gen != self._gen.get(work.partition, -1):
                return
            for held in lane.head_marker_durable():
                self._write_parked(held, on_ack=partial(self._finish, held))
            if work.from_parked:
                self._tombstone(work.partition, task_key(task.subscription_id, task.seq))
            self._finish(work)

        self._produce(
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
            failed_ms=_now_ms(),
            last_status=outcome.status,
            last_error=outcome.error,
            last_response_body=outcome.response_excerpt,
        )
        self._metrics.dead_letter(reason)
        self._metrics.delivery_outcome("dead_letter")

        def durable() -> None:
            self._settled.add(task.delivery_id, _now_ms())
            self._finish(work)
            if work.gen == self._gen.get(work.partition, -1):
                self._advance(work)

        self._produce(
            self._topics.dlq,
            work.partition,
            task.subscription_id.encode(),
            self._codec.encode_dead_letter(letter),
            durable,
        )

    def _redundant(self, work: Work) -> bool:
        """Another copy of this delivery settled or is being attempted (re-drives excepted)."""
        task = work.task
        if task.redrive_id is not None or self._settled.window_ms <= 0:
            return False
        if task.delivery_id in self._settled:
            return True
        other = self._flying.get(task.delivery_id)
        return other is not None and other.gen == self._gen.get(other.partition, -1)

    def _skip_redundant(self, work: Work) -> None:
        """Settle a redundant copy without sending it: as if it had been delivered."""
        log.debug("%s already settled or in flight: not sent again", work.task.delivery_id)
        self._metrics.duplicate_skipped()
        self._finish(work)
        self._advance(work)

    def _advance(self, work: Work) -> None:
        """An ordered task is resolved: clear its markers and start the lane's next task."""
        task = work.task
        if not task.ordered:
            return
        lanes = self._lanes.get(work.partition)
        lane = lanes.get(task.subscription_id) if lanes else None
        if lane is None:
            return
        if lane.resolved():
            self._tombstone(work.partition, head_key(task.subscription_id))
        if work.from_parked:
            self._tombstone(work.partition, task_key(task.subscription_id, task.seq))
        nxt = lane.next_work(self._topics.parked, work.partition, work.gen)
        if nxt is not None:
            self._ready.append(nxt)
        elif lane.idle and lanes is not None:
            del lanes[task.subscription_id]

    def _finish(self, work: Work) -> None:
        if work.offset < 0 or work.gen != self._gen.get(work.partition, -1):
            return
        self._offsets.finish(work.topic, work.partition, work.offset)

    # -- Kafka writes ---------------------------------------------------------------------

    def _write_parked(self, work: Work, on_ack: Callable[[], None]) -> None:
        task = work.task
        self._produce(
            self._topics.parked,
            work.partition,
            task_key(task.subscription_id, task.seq),
            self._codec.encode_parked("task", task),
            on_ack,
        )

    def _write_progress(self) -> None:
        """Record, per owned partition, the finished offsets a restart could read again (from
        the last confirmed commit on), so a new owner after a crash skips them. Best effort:
        a lost record costs duplicates."""
        for topic, partition, ranges in self._offsets.progress():
            if partition in self._gen:
                inherited = self._skip.get((topic, partition))
                floor = self._offsets.floor(topic, partition)
                if inherited and floor is not None:  # below the commit: never read again
                    inherited.difference_update([o for o in inherited if o < floor])
                if inherited:  # not yet reached: keep them known to the next owner too
                    ranges = ranges_of(sorted(expand_ranges(ranges) | inherited), MAX_RANGES)
                value = self._codec.encode_progress(topic, ranges) if ranges else None
                self._produce(self._topics.parked, partition, progress_key(topic), value)

    def _tombstone(self, partition: int, key: bytes) -> None:
        self._produce(self._topics.parked, partition, key, None)

    def _produce(
        self,
        topic: str,
        partition: int,
        key: bytes,
        value: bytes | None,
        on_ack: Callable[[], None] | None = None,
    ) -> None:
        def report(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                self._fatal = f"write to {topic} failed: {err}"
            elif on_ack is not None:
                on_ack()

        produce(self._producer, topic, value, key, report, partition)

    # -- flow control ---------------------------------------------------------------------

    def _apply_backpressure(self) -> None:
        """Stop reading ``deliveries`` while the tasks read but not started (waiting in a lane,
        ready, or held by a limit) hold more than the read-ahead budget; read again below half
        of it. The budget is memory, not a count: an ordered endpoint starts only once its
        first task has been read, so the dispatcher reads as far ahead as memory allows."""
        unstarted = itertools.chain(
            self._ready,
            (t[2] for t in self._timed),
            itertools.chain.from_iterable(self._ws_waiting.values()),
            (w for lanes in self._lanes.values() for lane in lanes.values() for w in lane.waiting),
        )
        held = count = 0
        for work in unstarted:
            held += held_bytes(work)
            count += 1
        self._held, self._held_tasks = held, count
        self._metrics.read_ahead(held)
        budget = self._settings.read_ahead_bytes
        if not self._backpressure and held > budget:
            self._backpressure = True
            self._consumer.pause(self._deliveries_partitions())
        elif self._backpressure and held < budget // 2:
            self._backpressure = False
            self._consumer.resume(self._deliveries_partitions())

    def _report_retry_age(self) -> None:
        """Per delay topic: how long its oldest due record has waited past its due time."""
        now = _now_ms()
        oldest: dict[str, float] = {topic.rsplit(".", 1)[-1]: 0.0 for topic in self._topics.retry}
        for topic, seconds in self._delayed.overdue(now):
            delay = topic.rsplit(".", 1)[-1]
            oldest[delay] = max(oldest[delay], seconds)
        for delay, seconds in oldest.items():
            self._metrics.oldest_due_retry(delay, seconds)

    def _deliveries_partitions(self) -> list[TopicPartition]:
        return [TopicPartition(self._topics.deliveries, p) for p in self._gen]

    # -- assignment -----------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Assign here (not after the callback) so the partitions can be resumed: librdkafka
        # keeps a partition's pause flag across rebalances, and a partition we paused before
        # losing it must start fetching again when it comes back.
        consumer.assign(partitions)
        consumer.resume(partitions)
        new = sorted({tp.partition for tp in partitions} - set(self._gen))
        rebuilt = read_parked(self._make_reader, self._topics.parked, new, self._codec)
        if self._settled.window_ms > 0:
            now_ms = _now_ms()
            settled = read_settled(
                self._make_reader,
                self._topics.attempts,
                self._topics.dlq,
                new,
                now_ms - self._settled.window_ms,
                self._codec,
            )
            for delivery_id in settled:
                self._settled.add(delivery_id, now_ms)
            if settled:
                log.info("partitions %s: %d deliveries settled recently", new, len(settled))
        for p in new:
            self._generations += 1
            self._gen[p] = self._generations
            for topic, offsets in rebuilt[p].finished.items():
                self._skip[(topic, p)] = offsets
                log.info("partition %d of %s: %d records already finished", p, topic, len(offsets))
            lanes = self._lanes[p] = rebuilt[p].lanes
            for sub_id, lane in lanes.items():
                nxt = lane.next_work(self._topics.parked, p, self._gen[p])
                if nxt is not None:
                    self._ready.append(nxt)
                log.debug("partition %d: lane %s rebuilt", p, sub_id)
        self._backpressure = False
        self._assigned = True

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._write_progress()
        self._producer.flush(10)
        self._offsets.commit(consumer)
        self._on_lost(consumer, partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Forget the partitions. Lost (not revoked): the session expired, another member may
        own them, so no commit and no flush on the loop; queued writes go out later."""
        gone = {tp.partition for tp in partitions}
        self._offsets.drop(gone)
        self._delayed.drop(gone)
        for p in gone:
            self._gen.pop(p, None)
            self._lanes.pop(p, None)
        self._skip = {k: v for k, v in self._skip.items() if k[1] not in gone}
        self._ready = deque(w for w in self._ready if w.partition not in gone)
        self._timed = [t for t in self._timed if t[2].partition not in gone]
        heapq.heapify(self._timed)
        for workspace, queue in list(self._ws_waiting.items()):
            kept = deque(w for w in queue if w.partition not in gone)
            if kept:
                self._ws_waiting[workspace] = kept
            else:
                del self._ws_waiting[workspace]
        self._assigned = bool(self._gen)

    # -- shutdown -------------------------------------------------------------------------

    async def _drain(self) -> None:
        """Stop starting work, let in-flight attempts finish within the deadline, spill
        what never started, and settle every write."""
        deadline = self._settings.shutdown_timeout_ms / 1000
        if self._in_flight:
            _done, pending = await asyncio.wait(set(self._in_flight), timeout=deadline)
            for job in pending:
                job.cancel()
        self._spill()
        self._write_progress()
        self._producer.flush(max(1.0, deadline))
        self._offsets.store(self._consumer)

    def _spill(self) -> None:
        """Make never-started work durable elsewhere so the commit can pass it: unordered
        tasks to the first delay topic (due now), idle ordered lanes' tasks to ``parked``."""
        now = _now_ms()
        unstarted = [*self._ready, *(t[2] for t in self._timed)]
        unstarted += [w for queue in self._ws_waiting.values() for w in queue]
        for work in unstarted:
            if not work.task.ordered and work.gen == self._gen.get(work.partition, -1):
                copy = replace(work.task, hop=work.task.hop + 1, due_ms=now)
                self._produce(
                    self._topics.retry[0],
                    work.partition,
                    work.task.subscription_id.encode(),
                    self._codec.encode_task(copy),
                    partial(self._finish, work),
                )
        for lanes in self._lanes.values():
            for lane in lanes.values():
                self._spill_lane(lane)

    def _spill_lane(self, lane: Lane) -> None:
        if lane.head is not None:
            return
        busy = lane.busy
        if busy is not None and id(busy) in self._started:
            return  # still in flight: its lane replays from the source
        works = ([busy] if busy is not None and not busy.from_parked else []) + list(lane.waiting)
        for work in works:
            self._write_parked(work, on_ack=partial(self._finish, work))

    def _close(self) -> None:
        close_consumer(self._consumer, "dispatcher")  # revokes: final commit in _on_revoke

    # -- helpers --------------------------------------------------------------------------

    def _lane(self, partition: int, sub_id: str) -> Lane:
        lanes = self._lanes.setdefault(partition, {})
        lane = lanes.get(sub_id)
        if lane is None:
            lane = lanes[sub_id] = Lane()
        return lane

    def _parked_count(self) -> int:
        return sum(len(lane.parked) for lanes in self._lanes.values() for lane in lanes.values())


def _now_ms() -> int:
    return int(time.time() * 1000)
