"""Rebuild a partition's state from the compacted ``parked`` topic on assignment: its ordered
lanes (each entry's key names its lane: ``task/<sub>/<seq>`` and ``head/<sub>``, as written
before ordering scopes, are whole-endpoint lanes), the offsets already finished past the
committed offset (``done/<topic>`` keys), which the new owner skips instead of sending again,
and the failing endpoints' streaks (``health/<sub>``).

Last value per key wins and tombstones delete: the reader never relies on the broker
having compacted the topic.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from worker.codec.records import RecordCodec
from worker.dispatch.backlog import Backlog, Tally
from worker.dispatch.ordering import HeadRef, Lane, LaneId, parse_task_key
from worker.errors import BackendError
from worker.kafka.offsets import expand_ranges
from worker.model import DeliveryTask, EndpointHealth

__all__ = [
    "HEALTH_PREFIX",
    "PROGRESS_PREFIX",
    "RebuildError",
    "Rebuilt",
    "health_key",
    "progress_key",
    "read_parked",
    "read_to_end",
]

PROGRESS_PREFIX = b"done/"
HEALTH_PREFIX = b"health/"


def health_key(sub_id: str) -> bytes:
    return HEALTH_PREFIX + sub_id.encode()


def progress_key(topic: str) -> bytes:
    return PROGRESS_PREFIX + topic.encode()


@dataclass(slots=True)
class Rebuilt:
    """One partition's state as the topic tells it."""

    # subscription -> ordering key (None: the whole endpoint) -> lane
    lanes: dict[str, dict[bytes | None, Lane]] = field(default_factory=dict)
    finished: dict[str, set[int]] = field(default_factory=dict)  # topic -> offsets
    health: list[EndpointHealth] = field(default_factory=list)  # failing endpoints' streaks


REBUILD_TIMEOUT_S = 60.0


class RebuildError(BackendError):
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
    tally: Tally,
) -> dict[int, Rebuilt]:
    """Read each partition of ``topic`` from the beginning to its end; per partition, the lanes
    with parked state, and the finished offsets per topic. Only head markers are decoded:
    a parked task is indexed by its key (which holds its lane and seq) and its offset, and its
    body is read back when its turn comes."""
    if not partitions:
        return {}
    index: dict[int, _Index] = {p: _Index() for p in partitions}
    progress: dict[int, dict[bytes, tuple[str, list[int]]]] = {p: {} for p in partitions}
    health: dict[int, dict[bytes, EndpointHealth]] = {p: {} for p in partitions}
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
                continue
            if key.startswith(HEALTH_PREFIX):
                if value is None:
                    health[partition].pop(key, None)
                else:
                    health[partition][key] = codec.decode_health(value)
                continue
            parsed = parse_task_key(key)
            if parsed is not None:
                kind, lane, seq = parsed
                head = codec.decode_parked(value)[1] if kind == "head" and value else None
                index[partition].put(kind, lane, seq, message.offset() or 0, value is None, head)
    finally:
        reader.close()
    return {
        p: Rebuilt(
            index[p].lanes(tally),
            {topic: expand_ranges(ranges) for topic, ranges in progress[p].values()},
            list(health[p].values()),
        )
        for p in partitions
    }


class _Index:
    """One partition's ordering entries as read so far (last value per key wins)."""

    def __init__(self) -> None:
        self.heads: dict[LaneId, DeliveryTask] = {}
        # per lane: seq, offset, seq, offset, ... in log order (16 bytes a task), and the seqs
        # tombstoned after them
        self.tasks: dict[LaneId, array[int]] = {}
        self.gone: dict[LaneId, set[int]] = {}

    def put(
        self,
        kind: str,
        lane: LaneId,
        seq: int,
        offset: int,
        tombstone: bool,
        head: DeliveryTask | None,
    ) -> None:
        if kind == "head":
            if tombstone or head is None:
                self.heads.pop(lane, None)
            else:
                self.heads[lane] = head
        elif tombstone:
            self.gone.setdefault(lane, set()).add(seq)
        else:
            entries = self.tasks.get(lane)
            if entries is None:
                entries = self.tasks[lane] = array("q")
            entries.append(seq)
            entries.append(offset)
            gone = self.gone.get(lane)
            if gone:
                gone.discard(seq)

    def lanes(self, tally: Tally) -> dict[str, dict[bytes | None, Lane]]:
        lanes: dict[str, dict[bytes | None, Lane]] = {}

        def lane_for(lane_id: LaneId) -> Lane:
            return lanes.setdefault(lane_id[0], {}).setdefault(lane_id[1], Lane(tally))

        for lane_id, head in self.heads.items():
            lane = lane_for(lane_id)
            lane.head = HeadRef.of(head)
            lane.head_durable = True
            lane.max_seq = max(lane.max_seq, head.seq)
        for lane_id in list(self.tasks):
            entries = self.tasks.pop(lane_id)  # freed lane by lane: the peak stays small
            gone = self.gone.get(lane_id, set())
            backlog: Backlog | None = None
            for seq, offset in zip(entries[::2], entries[1::2], strict=True):
                if seq in gone:
                    continue
                if backlog is None:
                    backlog = Backlog(tally)
                backlog.add(seq, offset)
            if backlog is None:
                continue
            lane = lane_for(lane_id)
            lane.backlog = backlog
            lane.max_seq = max(lane.max_seq, backlog.last() or -1)
            if lane.head is not None:
                # A parked task that became the head is tombstoned only after its head marker
                # is durable; a crash in between leaves both, and the head wins.
                backlog.drop_through(lane.head.seq)
                if not len(backlog):
                    lane.backlog = None
        return lanes
