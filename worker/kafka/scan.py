"""Reading a whole topic once, to where it ended when the scan began (for CLI tools).

The end of every partition is taken first, so records written while the scan runs (a redrive
that dead-letters again, say) cannot keep it going forever. A partition whose leader is not
known yet (a topic just created, a leader moving) is asked again until ``TIMEOUT_S``; what
still fails is a :class:`ScanError` of one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from worker.config import Settings
from worker.errors import BackendError
from worker.kafka.clients import make_consumer

__all__ = ["ScanError", "asked_until_answered", "scan"]

TIMEOUT_S = 10.0
QUIET_S = 0.3
# Answers that mean "not yet": the partition's leader is being elected or has moved.
NOT_YET = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TIMED_OUT,
    }
)

T = TypeVar("T")


class ScanError(BackendError):
    """The topic is missing or could not be read; the message says why in one line."""


def scan(settings: Settings, topic: str, since_ms: int | None = None) -> Iterator[Message]:
    """Every record of ``topic`` (from the first at or after ``since_ms`` when given), in
    offset order within each partition, up to each partition's end at the start of the scan."""
    consumer = make_consumer(settings, None, **{"enable.partition.eof": "true"})
    try:
        yield from _scan(consumer, topic, since_ms)
    finally:
        consumer.close()


def _scan(consumer: Consumer, topic: str, since_ms: int | None) -> Iterator[Message]:
    ends = _ends(consumer, topic)
    starts = _starts(consumer, topic, ends, since_ms)
    wanted = {p: end for p, end in ends.items() if starts[p] < end}
    if not wanted:
        return
    consumer.assign([TopicPartition(topic, p, starts[p]) for p in wanted])
    # A partition is at its end once a record at or past the snapshot end was read, or the
    # consumer says so (partition EOF). The scan stops at the first quiet poll after every
    # partition is at its end, not at the snapshot offset itself: brokers whose watermark
    # lags behind a batch (Tansu reports the last batch's base offset + 1) would otherwise
    # cut the last batch short. Records written meanwhile may be included; none is skipped.
    at_end: set[int] = set()
    last_progress = time.monotonic()
    while True:
        messages = consumer.consume(500, QUIET_S if len(at_end) == len(wanted) else 1.0)
        if not messages:
            if len(at_end) == len(wanted):
                return
            if time.monotonic() - last_progress > TIMEOUT_S:
                raise ScanError(f"reading {topic}: no progress for {TIMEOUT_S:.0f}s")
            continue
        last_progress = time.monotonic()
        for message in messages:
            partition = message.partition() or 0
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise ScanError(f"reading {topic}: {error.str()}")
                at_end.add(partition)
                continue
            yield message
            if (message.offset() or 0) + 1 >= wanted[partition]:
                at_end.add(partition)


def _ends(consumer: Consumer, topic: str) -> dict[int, int]:
    info = consumer.list_topics(topic, timeout=TIMEOUT_S).topics.get(topic)
    if info is None or info.error is not None:
        raise ScanError(f"topic {topic} does not exist: run `webhook-worker topics ensure`")
    ends: dict[int, int] = {}
    for p in sorted(info.partitions):
        _low, high = _watermarks(consumer, topic, p)
        ends[p] = high
    return ends


def _watermarks(consumer: Consumer, topic: str, partition: int) -> tuple[int, int]:
    tp = TopicPartition(topic, partition)
    return asked_until_answered(
        lambda: consumer.get_watermark_offsets(tp, timeout=TIMEOUT_S, cached=False),
        f"reading the ends of {topic} [{partition}]",
    )


def asked_until_answered(
    ask: Callable[[], T], what: str, timeout_s: float = TIMEOUT_S, pause_s: float = 0.1
) -> T:
    """``ask()``, again after ``pause_s`` while the broker answers "not yet" (:data:`NOT_YET`),
    for up to ``timeout_s``; any other error, or "not yet" past then, is a :class:`ScanError`."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return ask()
        except KafkaException as e:
            error = e.args[0] if e.args and isinstance(e.args[0], KafkaError) else None
            not_yet = error is not None and (error.code() in NOT_YET or error.retriable())
            if not not_yet or time.monotonic() + pause_s > deadline:
                reason = error.str() if error is not None else str(e)
                raise ScanError(f"{what}: {reason}") from e
        time.sleep(pause_s)


def _starts(
    consumer: Consumer, topic: str, ends: dict[int, int], since_ms: int | None
) -> dict[int, int]:
    if since_ms is None:
        lows = {}
        for p in ends:
            low, _high = _watermarks(consumer, topic, p)
            lows[p] = low
        return lows
    wanted = [TopicPartition(topic, p, since_ms) for p in ends]
    found = asked_until_answered(
        lambda: consumer.offsets_for_times(wanted, timeout=TIMEOUT_S),
        f"finding the offsets of {topic} at a time",
    )
    # -1: no record at or after the time, so nothing to read in that partition.
    return {tp.partition: tp.offset if tp.offset >= 0 else ends[tp.partition] for tp in found}
