"""Rebuild a partition's state from the compacted ``parked`` topic on assignment: its ordered
lanes (each entry's task says its lane: entries written before ordering scopes are whole-endpoint
lanes), and the offsets already finished past the committed offset (``done/<topic>`` keys),
which the new owner skips instead of sending again.

Last value per key wins and tombstones delete: the reader never relies on the broker
having compacted the topic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from worker.codec.records import RecordCodec
from worker.dispatch.ordering import Lane, lane_of
from worker.kafka.offsets import expand_ranges
from worker.model import DeliveryTask

__all__ = [
    "PROGRESS_PREFIX",
    "RebuildError",
    "Rebuilt",
    "progress_key",
    "read_parked",
    "read_to_end",
]

PROGRESS_PREFIX = b"done/"


def progress_key(topic: str) -> bytes:
    return PROGRESS_PREFIX + topic.encode()


@dataclass(slots=True)
class Rebuilt:
    """One partition's state as the topic tells it."""

    # subscription -> ordering key (None: the whole endpoint) -> lane
    lanes: dict[str, dict[bytes | None, Lane]] = field(default_factory=dict)
    finished: dict[str, set[int]] = field(default_factory=dict)  # topic -> offsets


REBUILD_TIMEOUT_S = 60.0


class RebuildError(RuntimeError):
    """A partition could not be read to its end in time."""


def read_to_end(reader: Consumer, starts: list[TopicPartition]) -> Iterator[Message]:
    """The records of each partition in ``starts`` from its offset to its end (partition EOF),
    assigned to ``reader`` (the caller closes it); RebuildError on a read error or after
    REBUILD_TIMEOUT_S."""
    if not starts:
        return
    reader.assign(starts)
    remaining = {(tp.topic, tp.partition) for tp in starts}
    deadline = time.monotonic() + REBUILD_TIMEOUT_S
    while remaining:
        if time.monotonic() > deadline:
            raise RebuildError(f"could not read {sorted(remaining)} to the end")
        for message in reader.consume(1000, 0.2):
            error = message.error()
            if error is None:
                yield message
            elif error.code() == KafkaError._PARTITION_EOF:
                remaining.discard((message.topic(), message.partition()))
            else:
                raise RebuildError(f"reading {message.topic()}: {error}")


def read_parked(
    make_reader: Callable[[], Consumer],
    topic: str,
    partitions: list[int],
    codec: RecordCodec,
) -> dict[int, Rebuilt]:
    """Read each partition of ``topic`` from the beginning to its end; per partition, one
    Lane per subscription that has parked state, and the finished offsets per topic."""
    entries: dict[int, dict[bytes, tuple[str, DeliveryTask]]] = {p: {} for p in partitions}
    progress: dict[int, dict[bytes, tuple[str, list[int]]]] = {p: {} for p in partitions}
    if not partitions:
        return {}
    reader = make_reader()
    try:
        starts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions]
        for message in read_to_end(reader, starts):
            key = message.key()
            if key is None:
                continue
            partition, value = message.partition() or 0, message.value()
            if key.startswith(PROGRESS_PREFIX):
                if value is None:
                    progress[partition].pop(key, None)
                else:
                    progress[partition][key] = codec.decode_progress(value)
            elif value is None:
                entries[partition].pop(key, None)
            else:
                entries[partition][key] = codec.decode_parked(value)
    finally:
        reader.close()
    return {
        p: Rebuilt(
            _lanes(table),
            {topic: expand_ranges(ranges) for topic, ranges in progress[p].values()},
        )
        for p, table in entries.items()
    }


def _lanes(
    entries: dict[bytes, tuple[str, DeliveryTask]],
) -> dict[str, dict[bytes | None, Lane]]:
    lanes: dict[str, dict[bytes | None, Lane]] = {}
    for kind, task in entries.values():
        lane_id = lane_of(task)
        if lane_id is None:
            continue  # not an ordered task (not written by this worker)
        lane = lanes.setdefault(lane_id[0], {}).setdefault(lane_id[1], Lane())
        if kind == "head":
            lane.head = task
            lane.head_durable = True
            lane.max_seq = max(lane.max_seq, task.seq)
        else:
            lane.park(task)
    for sub_lanes in lanes.values():
        for lane in sub_lanes.values():
            if lane.head is not None:
                # A parked task that became the head is tombstoned only after its head marker
                # is durable; a crash in between leaves both, and the head wins.
                head_seq = lane.head.seq
                lane.parked = [t for t in lane.parked if t.seq > head_seq]
    return lanes
