"""Reading parked tasks back from ``parked`` when their lane's turn comes.

A lane keeps only the index of its parked tasks (:mod:`worker.dispatch.backlog`). When its
next task's body is not in memory the lane asks for it (``Partitions.wanting``); each loop step
reads back a bounded window per lane, for as many lanes as the read-back budget allows, with
one reader consumer: offsets close together are read in one pass.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, TopicPartition

from worker.codec.records import RecordCodec
from worker.dispatch.ordering import LaneId, Work
from worker.dispatch.partitions import Partitions
from worker.dispatch.rebuild import REBUILD_TIMEOUT_S, RebuildError

__all__ = ["READ_BACK_BUDGET", "READ_BACK_WINDOW", "ReadBack"]

log = logging.getLogger(__name__)

READ_BACK_WINDOW = 64  # parked tasks read back per lane at a time
READ_BACK_BUDGET = 4096  # read-back bodies held at once, over all lanes
RUN_GAP = 256  # offsets closer than this are read in one pass

_Wanted = dict[int, tuple[LaneId, int]]  # offset in parked -> (lane, seq)


class ReadBack:
    """Fills lanes' windows from ``parked``; hands each lane's next task to ``start``."""

    def __init__(
        self,
        *,
        make_reader: Callable[[], Consumer],
        topic: str,
        codec: RecordCodec,
        partitions: Partitions,
        start: Callable[[Work], None],
    ) -> None:
        self._make_reader = make_reader
        self._topic = topic
        self._codec = codec
        self._partitions = partitions
        self._start = start
        self._reader: Consumer | None = None

    def step(self) -> bool:
        """Serve waiting lanes while the budget allows; True if anything was read."""
        parts = self._partitions
        if not parts.wanting or parts.tally.read_back >= READ_BACK_BUDGET:
            return False
        chosen, wanted = self._choose(READ_BACK_BUDGET - parts.tally.read_back)
        for partition, offsets in wanted.items():
            self._fill(partition, offsets, self._read(partition, sorted(offsets)))
        for partition, lane_id in chosen:
            lane = parts.find_lane(partition, lane_id)
            nxt = parts.next_work(partition, lane_id, lane) if lane is not None else None
            if nxt is not None:
                self._start(nxt)
        return bool(chosen)

    def _choose(self, room: int) -> tuple[list[tuple[int, LaneId]], dict[int, _Wanted]]:
        """The lanes served this step (in the order they asked) and, per partition, the
        offsets to read for them."""
        parts = self._partitions
        chosen: list[tuple[int, LaneId]] = []
        wanted: dict[int, _Wanted] = {}
        for key in list(parts.wanting):
            if room <= 0:
                break
            del parts.wanting[key]
            partition, lane_id = key
            lane = parts.find_lane(partition, lane_id)
            if lane is None or lane.backlog is None or not lane.reading:
                continue
            window = lane.backlog.wanted(min(READ_BACK_WINDOW, room))
            room -= len(window)
            chosen.append(key)
            for seq, offset in window:
                wanted.setdefault(partition, {})[offset] = (lane_id, seq)
        return chosen, wanted

    def _fill(self, partition: int, offsets: _Wanted, found: dict[int, bytes]) -> None:
        for offset, (lane_id, seq) in offsets.items():
            lane = self._partitions.find_lane(partition, lane_id)
            if lane is None or lane.backlog is None:
                continue
            value = found.get(offset)
            if value is not None:
                lane.backlog.fill(seq, self._codec.decode_parked(value)[1])
            else:  # not in parked any more: skipping it beats a lane stuck for good
                log.error("parked task %d of partition %d is missing", seq, partition)
                lane.backlog.remove(seq)

    def _read(self, partition: int, offsets: list[int]) -> dict[int, bytes]:
        """The values at ``offsets`` (sorted) of one partition of ``parked``."""
        if self._reader is None:
            self._reader = self._make_reader()
        reader, found = self._reader, {}
        runs: list[list[int]] = []
        for offset in offsets:
            if runs and offset - runs[-1][-1] <= RUN_GAP:
                runs[-1].append(offset)
            else:
                runs.append([offset])
        deadline = time.monotonic() + REBUILD_TIMEOUT_S
        for run in runs:
            want, last = set(run), run[-1]
            reader.assign([TopicPartition(self._topic, partition, run[0])])
            done = False
            while not done:
                if time.monotonic() > deadline:
                    raise RebuildError(f"could not read back {self._topic}/{partition}")
                for message in reader.consume(500, 0.2):
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            done = True
                            continue
                        raise RebuildError(f"reading back {self._topic}: {error}")
                    offset = message.offset() or 0
                    value = message.value()
                    if offset in want and value is not None:
                        found[offset] = value
                    if offset >= last:
                        done = True
        return found

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
