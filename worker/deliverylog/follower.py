"""Following ``attempts``, ``dlq`` and ``redrives`` into the index, on a background thread.

One consumer without a group (``assign``) reads every partition of the three topics from the
positions stored in the index (the beginning, for a new file), decodes in batches and writes
them, with the new positions, in one transaction: up to ``FLUSH_ROWS`` records (or
``CATCH_UP_FLUSH_S``) per transaction while catching up, since a transaction writes each
index page it touched once however many of its rows landed there; each poll's records at
once after that. ``caught_up`` is set once every partition has reached the end it had at
start (partition-EOF events: Tansu's high watermark can be wrong) and all of it is written;
the follower then keeps reading, so a new attempt shows within about a second.

Resuming checks that the topic still holds the last record indexed (same offset, timestamp
and CRC): reading starts one record early and compares. A topic that was recreated (a dev
broker restart loses every topic) or shrank fails the check and the whole index is rebuilt
from the beginning of the topics. Past the end, Kafka answers "out of range" but Tansu
answers nothing (and its high watermark can be short of the end), so a record at or past the
high watermark that has not arrived within ``VERIFY_TIMEOUT_S`` counts as missing too. A
partition whose retention deleted records before they were indexed resumes at its first
record, with a warning.

Rows older than ``WEBHOOK_API_LOG_RETENTION`` are not indexed, and are deleted every few
minutes. Undecodable records are skipped with a counted warning.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message
from confluent_kafka import TopicPartition as TP

from worker.codec.records import RecordCodec
from worker.config import Settings
from worker.deliverylog.queries import DeliveryLog
from worker.deliverylog.rows import attempt_row, dead_letter_row, mark_row
from worker.deliverylog.store import Batch, Position, Store, index_path, row_id
from worker.errors import BackendError
from worker.kafka.clients import close_consumer, make_consumer
from worker.kafka.topics import Topics

__all__ = ["CONSUMER_OVERRIDES", "LogError", "LogFollower", "open_log"]

log = logging.getLogger(__name__)

# EOF events tell when a partition's end is reached; "error" instead of a silent reset tells
# when a stored position no longer exists (the follower then rebuilds).
# Prefetch bounded at 16 MB (librdkafka's default is 64 MB per queue): enough to keep a
# catch-up fed, and it counts in the API's resident memory.
CONSUMER_OVERRIDES = {
    "enable.partition.eof": "true",
    "auto.offset.reset": "error",
    "queued.max.messages.kbytes": "16384",
}
BATCH = 5000
FLUSH_ROWS = 20_000
CATCH_UP_FLUSH_S = 5.0
FLUSH_S = 0.5
POLL_S = 0.2
LAG_EVERY_S = 1.0
EXPIRE_EVERY_S = 300.0
METADATA_EVERY_S = 60.0
METADATA_TIMEOUT_S = 10.0
VERIFY_TIMEOUT_S = 10.0
_RESET = {KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE}

Key = tuple[str, int]


class LogError(BackendError):
    """The topics cannot be followed (missing topic, broker or disk error)."""


class _Rebuild(Exception):
    """The stored positions do not match the topics: read them again from the start."""


def _crc(value: bytes | None) -> int:
    return zlib.crc32(value or b"")


def _position(message: Message) -> Position:
    return Position((message.offset() or 0) + 1, message.timestamp()[1], _crc(message.value()))


class LogFollower:
    """Reads the three topics into ``store`` on a background thread (see the module)."""

    def __init__(
        self,
        consumer: Consumer,
        topics: Topics,
        store: Store,
        codec: RecordCodec,
        *,
        retention_ms: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.caught_up = threading.Event()
        self.error: BaseException | None = None
        self.skipped = 0  # undecodable records
        self.rebuilds = 0
        self._consumer = consumer
        self._topics = topics
        self._codec = codec
        self._retention_ms = retention_ms
        self._clock = clock
        self._names = (topics.attempts, topics.dlq, topics.redrives)
        self._next: dict[Key, int] = {}  # the next offset to index, per partition
        self._verify: dict[Key, Position] = {}  # resumed partitions not yet checked
        self._verify_by = 0.0  # monotonic deadline of the check records past the watermark
        self._doubtful: set[Key] = set()  # resumed partitions whose check record is past it
        self._pending: set[Key] = set()  # partitions that have not reached their end yet
        self._lag = 0
        self._batch = Batch()  # read, not written yet
        self._flush_by = 0.0
        self._lag_at = 0.0
        self._metadata_at = time.monotonic() + METADATA_EVERY_S
        self._expired_at = -EXPIRE_EVERY_S  # the first expiry runs once caught up
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="delivery-log", daemon=True)

    # -- the API's side ------------------------------------------------------------------
    def start(self) -> LogFollower:
        self._thread.start()
        return self

    def ready(self) -> bool:
        """True once caught up; raises :class:`LogError` if the follower died."""
        if self.error is not None:
            raise LogError(f"delivery log failed: {self.error}")
        return self.caught_up.is_set()

    def wait_caught_up(self, timeout: float) -> bool:
        self.caught_up.wait(timeout)
        return self.ready()

    def lag(self) -> int:
        """Records written to the three topics and not indexed yet (about a second old;
        0 when unknown, and never negative)."""
        return self._lag

    def stop(self) -> None:
        """Stop reading and close the consumer (the store stays open: the caller's)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(METADATA_TIMEOUT_S + 5)
        elif self._thread.ident is None:
            close_consumer(self._consumer, "delivery log")

    # -- the thread ----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._assign(self.store.positions())
            while not self._stop.is_set():
                self._step()
        except BaseException as exc:
            self.error = exc
            log.error("delivery log stopped: %s", exc)
            self.caught_up.set()
        finally:
            close_consumer(self._consumer, "delivery log")

    def _step(self) -> None:
        messages = self._consumer.consume(BATCH, POLL_S)
        now = time.monotonic()
        try:
            if not self._batch:
                self._flush_by = now + (FLUSH_S if self.caught_up.is_set() else CATCH_UP_FLUSH_S)
            self._handle(messages, self._batch)
            if self._doubtful & self._verify.keys() and now > self._verify_by:
                raise _Rebuild("the topics no longer hold the last records indexed")
        except _Rebuild as why:
            self._batch = Batch()
            self._rebuild(str(why))
            self._expired_at = -EXPIRE_EVERY_S
            return
        # Many records per transaction while catching up (a transaction writes every index
        # page it touched once, however many of its rows landed there); at the end of the
        # topics, each poll's records at once.
        if self._batch and (
            self._batch.rows() >= FLUSH_ROWS
            or now >= self._flush_by
            or (not self._pending and len(messages) < BATCH)
        ):
            self.store.write(self._batch)
            self._batch = Batch()
        if not self._pending and not self._batch:
            self.caught_up.set()
        self._periodic(now)

    def _periodic(self, now: float) -> None:
        if now >= self._lag_at:
            self._lag = self._measure_lag()
            self._lag_at = now + LAG_EVERY_S
        if self.caught_up.is_set() and now >= self._expired_at + EXPIRE_EVERY_S:
            self._expire()
            self._expired_at = now
        if now >= self._metadata_at:
            self._add_new_partitions()
            self._metadata_at = now + METADATA_EVERY_S

    def _partitions(self) -> list[Key]:
        metadata = self._consumer.list_topics(timeout=METADATA_TIMEOUT_S)
        found: list[Key] = []
        for name in self._names:
            info = metadata.topics.get(name)
            if info is None or info.error is not None or not info.partitions:
                raise LogError(f"topic {name} does not exist: run `webhook-worker topics ensure`")
            found.extend((name, p) for p in sorted(info.partitions))
        return found

    def _assign(self, stored: dict[Key, Position]) -> None:
        partitions = self._partitions()
        if set(stored) - set(partitions):
            self._rebuild("partitions of the index are gone from the topics")
            return
        self._next, self._verify, self._doubtful = {}, {}, set()
        assignment = []
        for key in partitions:
            position = stored.get(key)
            start = OFFSET_BEGINNING if position is None else position.next_offset - 1
            if position is not None and start >= 0:
                low, high = self._consumer.get_watermark_offsets(
                    TP(*key), timeout=METADATA_TIMEOUT_S, cached=False
                )
                if start < low:
                    log.warning(
                        "delivery log: %s[%d] lost offsets %d to %d to retention before they "
                        "were indexed",
                        *key,
                        start + 1,
                        low - 1,
                    )
                    position, start = None, low
                elif start >= high:
                    self._doubtful.add(key)
            if position is None:
                self._next[key] = max(start, 0)
            else:
                # One record early: the first one read must be the last one indexed.
                self._verify[key] = position
                self._next[key] = position.next_offset
            assignment.append(TP(*key, start))
        self._pending = set(partitions)
        self._verify_by = time.monotonic() + VERIFY_TIMEOUT_S
        self._consumer.assign(assignment)

    def _rebuild(self, why: str) -> None:
        log.warning("delivery log: %s; rebuilding the index from the topics", why)
        self.rebuilds += 1
        self.caught_up.clear()
        self.store.reset()
        self._assign({})

    def _handle(self, messages: list[Message], batch: Batch) -> None:
        """Add ``messages`` to ``batch`` (with the partitions' new positions)."""
        last: dict[Key, Message] = {}
        cutoff = int(self._clock() * 1000) - self._retention_ms
        for message in messages:
            key = (message.topic() or "", message.partition() or 0)
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    if key in self._verify:
                        raise _Rebuild(f"{key[0]}[{key[1]}] ends before the last record indexed")
                    self._pending.discard(key)
                elif error.code() in _RESET:
                    raise _Rebuild(f"{key[0]}[{key[1]}]: {error.str()}")
                else:
                    log.warning("delivery log: %s", error.str())
                continue
            expected = self._verify.pop(key, None)
            if expected is not None:
                if _position(message) != expected:
                    raise _Rebuild(f"{key[0]}[{key[1]}] no longer holds the last record indexed")
                continue
            self._index(message, batch, cutoff)
            last[key] = message
        for key, message in last.items():
            batch.positions[key] = position = _position(message)
            self._next[key] = position.next_offset

    def _index(self, message: Message, batch: Batch, cutoff_ms: int) -> None:
        topic, value = message.topic(), message.value()
        partition, offset = message.partition() or 0, message.offset() or 0
        try:
            if topic == self._topics.attempts and value is not None:
                attempt = self._codec.decode_attempt(value)
                if attempt.started_ms >= cutoff_ms:
                    batch.attempts.append(attempt_row(partition, offset, attempt))
                    if attempt.sent_again:
                        batch.sent_again.add((attempt.subscription_id, attempt.delivery_id))
            elif topic == self._topics.dlq and value is not None:
                letter = self._codec.decode_dead_letter(value)
                if letter.failed_ms >= cutoff_ms:
                    batch.dead_letters.append(
                        dead_letter_row(partition, offset, letter, self._codec)
                    )
            elif topic == self._topics.redrives:
                if value is None:  # a tombstone: the key is the letter's "partition/offset"
                    dlq_partition, dlq_offset = (message.key() or b"").decode().split("/")
                    batch.marks[row_id(int(dlq_partition), int(dlq_offset))] = None
                else:
                    mark = self._codec.decode_redrive(value)
                    batch.marks[row_id(mark.dlq_partition, mark.dlq_offset)] = mark_row(mark)
        except Exception as exc:
            self.skipped += 1
            if self.skipped <= 10 or self.skipped % 1000 == 0:
                log.warning(
                    "delivery log: skipping unreadable record %s[%d]@%d (%d so far): %s",
                    topic,
                    partition,
                    offset,
                    self.skipped,
                    exc,
                )

    def _measure_lag(self) -> int:
        total = 0
        for key, next_offset in self._next.items():
            try:
                low, high = self._consumer.get_watermark_offsets(TP(*key), cached=True)
            except KafkaException:
                continue
            if high is not None and high >= 0:
                total += max(0, high - max(next_offset, low or 0))
        return total

    def _expire(self) -> None:
        deleted = self.store.expire(int(self._clock() * 1000) - self._retention_ms)
        if deleted:
            log.info("delivery log: deleted %d rows past the retention", deleted)

    def _add_new_partitions(self) -> None:
        """Partitions added to the topics since the start are read from their beginning."""
        try:
            partitions = self._partitions()
        except (KafkaException, LogError) as exc:
            log.warning("delivery log: cannot refresh the topics' partitions: %s", exc)
            return
        new = [key for key in partitions if key not in self._next]
        if new:
            for key in new:
                self._next[key] = 0
            self._consumer.incremental_assign([TP(*key, OFFSET_BEGINNING) for key in new])


def open_log(settings: Settings, codec: RecordCodec) -> tuple[DeliveryLog, LogFollower]:
    """Open this deployment's index and start following the topics into it (call
    ``follower.stop()`` and then ``log.store.close()`` when done)."""
    store = Store(index_path(settings))
    consumer = make_consumer(settings, None, **CONSUMER_OVERRIDES)
    follower = LogFollower(
        consumer,
        Topics.from_settings(settings),
        store,
        codec,
        retention_ms=settings.api_log_retention_ms,
    )
    return DeliveryLog(store), follower.start()
