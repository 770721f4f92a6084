"""Reading the ``dlq`` topic back, with the redrive checkpoints of ``redrives``.

A dead letter is known by its position in ``dlq`` (``partition:offset``): the same delivery
(one ``webhook-id``) can be dead-lettered again after a redrive, and each of those is its own
letter. ``redrives`` holds a mark per re-driven position, which is what lets a second redrive
skip what the first one already sent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from worker.codec.records import CodecError, RecordCodec
from worker.config import Settings
from worker.kafka.scan import scan
from worker.kafka.topics import Topics
from worker.model import DeadLetter, RedriveMark

__all__ = ["Filter", "Letter", "read_letters", "read_marks"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Filter:
    """Which dead letters a command is about; ``None`` matches everything."""

    subscription: str | None = None
    workspace: str | None = None
    reason: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def matches(self, letter: DeadLetter) -> bool:
        task = letter.task
        return (
            (self.subscription is None or task.subscription_id == self.subscription)
            and (self.workspace is None or task.workspace == self.workspace)
            and (self.reason is None or letter.reason == self.reason)
            and (self.since_ms is None or letter.failed_ms >= self.since_ms)
            and (self.until_ms is None or letter.failed_ms < self.until_ms)
        )


@dataclass(slots=True)
class Letter:
    """One dead letter, where it is, and the redrive that sent it again (if one did)."""

    partition: int
    offset: int
    letter: DeadLetter
    redrive: RedriveMark | None = None

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"


def mark_key(partition: int, offset: int) -> bytes:
    return f"{partition}/{offset}".encode()


def read_marks(settings: Settings, codec: RecordCodec) -> dict[tuple[int, int], RedriveMark]:
    """Every redrive checkpoint, by dead-letter position (the newest mark wins)."""
    marks: dict[tuple[int, int], RedriveMark] = {}
    for message in scan(settings, Topics.from_settings(settings).redrives):
        value = message.value()
        if value is None:
            continue
        try:
            mark = codec.decode_redrive(value)
        except CodecError as exc:
            log.warning("skipping an unreadable redrive mark at %s: %s", message.offset(), exc)
            continue
        marks[(mark.dlq_partition, mark.dlq_offset)] = mark
    return marks


def read_letters(
    settings: Settings, codec: RecordCodec, wanted: Filter, *, with_marks: bool = True
) -> Iterator[Letter]:
    """The dead letters matching ``wanted``, in ``dlq`` order within each partition (so an
    ordered subscription's letters come in the order they failed)."""
    marks = read_marks(settings, codec) if with_marks else {}
    # Dead letters are written when they fail, so the record time bounds failed_ms.
    for message in scan(settings, Topics.from_settings(settings).dlq, since_ms=wanted.since_ms):
        partition, offset = message.partition() or 0, message.offset() or 0
        try:
            letter = codec.decode_dead_letter(message.value())
        except CodecError as exc:
            log.warning("skipping an unreadable dead letter at %d:%d: %s", partition, offset, exc)
            continue
        if wanted.matches(letter):
            yield Letter(partition, offset, letter, marks.get((partition, offset)))
