"""Re-driving dead letters: their tasks go back to ``deliveries`` as fresh first attempts.

What stays: the ``webhook-id`` (``delivery_id``), so receivers can dedupe, and the body.
What is reset: the attempt count (the retry schedule starts again; the delivery log numbers
the new attempts on from the old ones), the due time and the last result. The task is keyed by its
subscription like every task, so it lands in the subscription's partition of ``deliveries``,
and letters are sent in ``dlq`` order: an ordered subscription gets its re-driven events in
the order they failed, which is their original order.

The checkpoint: once a task is acknowledged by the broker, a mark for its dead letter's
position is written to the compacted ``redrives`` topic, by a redrive and by the API's
re-send of one delivery alike. A later redrive sends only the newest letter of a delivery,
and skips it when it is marked (unless forced). A crash between the two writes means the
letter is sent again next time: at least once, never lost, and receivers dedupe on the
unchanged ``webhook-id``.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, Message, Producer

from worker.codec.records import RecordCodec
from worker.dlq.store import Letter, mark_key
from worker.kafka.topics import Topics
from worker.kafka.writes import produce
from worker.model import DeliveryTask, RedriveMark
from worker.subscriptions.model import Status, Subscription

__all__ = ["Plan", "Result", "plan", "redrive", "redriven_task"]

Progress = Callable[[int, int], None]


@dataclass(slots=True)
class Plan:
    """What a redrive will send, and what it leaves out and why."""

    send: list[Letter] = field(default_factory=list)
    already_redriven: int = 0  # marked by an earlier redrive (sent again with force)
    superseded: int = 0  # an older letter of a delivery that has a newer one selected
    deleted: dict[str, int] = field(default_factory=dict)  # subscription gone: letters skipped
    inactive: dict[str, str] = field(default_factory=dict)  # subscription id -> status


@dataclass(slots=True)
class Result:
    redrive_id: str
    sent: int = 0  # acknowledged by the broker
    failed: list[str] = field(default_factory=list)  # "position: error"


def plan(
    letters: Iterable[Letter],
    subscription: Callable[[str], Subscription | None],
    *,
    force: bool,
) -> Plan:
    """Choose what to send: of each delivery, its newest letter only (an older one is
    ``superseded``, whether marked or not: re-sending or redriving the newest covers it).
    Without ``force``, a newest letter already re-driven is skipped; letters of deleted
    subscriptions are always skipped (there is nowhere to send them); subscriptions that are
    not ACTIVE are reported in ``inactive`` (the caller refuses unless forced)."""
    result = Plan()
    listed = list(letters)
    newest = {letter.letter.task.delivery_id: letter for letter in listed}
    for letter in listed:
        sub_id = letter.letter.task.subscription_id
        if newest[letter.letter.task.delivery_id] is not letter:
            if letter.redrive is not None and not force:
                result.already_redriven += 1
            else:
                result.superseded += 1
            continue
        if letter.redrive is not None and not force:
            result.already_redriven += 1
            continue
        sub = subscription(sub_id)
        if sub is None:
            result.deleted[sub_id] = result.deleted.get(sub_id, 0) + 1
            continue
        if sub.status is not Status.ACTIVE:
            result.inactive[sub_id] = sub.status.value
        result.send.append(letter)
    return result


def redriven_task(task: DeliveryTask, redrive_id: str, now_ms: int) -> DeliveryTask:
    """The task to write again: same webhook-id and body, a fresh first attempt."""
    return dataclasses.replace(
        task,
        seq=-1,
        attempt=0,
        hop=task.hop + 1,
        due_ms=0,
        last_status=None,
        last_error=None,
        created_ms=now_ms,
        redrive_id=redrive_id,
    )


def redrive(
    producer: Producer,
    topics: Topics,
    codec: RecordCodec,
    letters: list[Letter],
    *,
    rate: float,
    progress: Progress | None = None,
    flush_timeout_s: float = 30.0,
) -> Result:
    """Write ``letters``' tasks to ``deliveries`` at most ``rate`` per second (0: no limit),
    each followed, once acknowledged, by its checkpoint mark."""
    result = Result(redrive_id=f"rd_{uuid.uuid4().hex[:16]}")
    total = len(letters)
    acked = 0

    def task_written(letter: Letter) -> Callable[[KafkaError | None, Message], None]:
        def done(error: KafkaError | None, _message: Message) -> None:
            nonlocal acked
            if error is not None:
                result.failed.append(f"{letter.position}: {error.str()}")
                return
            task = letter.letter.task
            mark = RedriveMark(
                dlq_partition=letter.partition,
                dlq_offset=letter.offset,
                delivery_id=task.delivery_id,
                subscription_id=task.subscription_id,
                redrive_id=result.redrive_id,
                redriven_ms=int(time.time() * 1000),
            )
            produce(
                producer,
                topics.redrives,
                codec.encode_redrive(mark),
                mark_key(letter.partition, letter.offset),
                on_delivery=mark_written,
            )
            acked += 1
            result.sent += 1
            if progress is not None:
                progress(acked, total)

        return done

    def mark_written(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            result.failed.append(f"checkpoint: {error.str()}")

    interval = 1.0 / rate if rate > 0 else 0.0
    next_at = time.monotonic()
    for letter in letters:
        if interval:
            while (wait := next_at - time.monotonic()) > 0:
                producer.poll(min(wait, 0.05))
            next_at = max(next_at + interval, time.monotonic() - 1.0)
        task = redriven_task(letter.letter.task, result.redrive_id, int(time.time() * 1000))
        produce(
            producer,
            topics.deliveries,
            codec.encode_task(task),
            task.subscription_id.encode(),
            on_delivery=task_written(letter),
        )
        producer.poll(0)
    # Twice: the first flush acknowledges the tasks, whose callbacks produce the marks.
    for _ in range(2):
        if producer.flush(flush_timeout_s) > 0:
            result.failed.append("timed out waiting for the broker to acknowledge writes")
            break
    return result
