"""Reading parked tasks back from ``parked`` when their lane's turn comes.

A lane keeps only the index of its parked tasks (:mod:`worker.dispatch.backlog`). When its
next task's body is not in memory the lane asks for it (``Partitions.wanting``); each loop step
reads back a bounded window per lane, for as many lanes as the read-back budget allows, with
one reader consumer, in one pass per partition from the first offset wanted to the last (a
pass that gets no record for ``STALL_S``, as in a broker outage, stops, and what it did not
reach is read on a later step).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, TopicPartition

from worker.codec.records import RecordCodec
from worker.dispatch.ordering import LaneId, Work
from worker.dispatch.partitions import Partitions

__all__ = ["READ_BACK_BUDGET", "READ_BACK_WINDOW", "ReadBack"]

log = logging.getLogger(__name__)

READ_BACK_WINDOW = 64  # parked tasks read back per lane at a time
READ_BACK_BUDGET = 4096  # read-back bodies held at once, over all lanes
SCAN_BATCH = 1000
# The most records one pass reads from its first wanted offset: a lane whose tasks lie further
# on asks again on a later step (a flood's parked tasks are scattered between other lanes').
SCAN_SPAN = 5000
STALL_S = 1.5  # the longest a step waits for the first record of a read-back (> one fetch)

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
            found, reached = self._read(partition, sorted(offsets))
            self._fill(partition, offsets, found, reached)
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
            parts.unwant(key)
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

    def _fill(
        self, partition: int, offsets: _Wanted, found: dict[int, bytes], reached: int
    ) -> None:
        """Bodies found go to their lanes; an entry the pass went by without finding is gone
        from ``parked``; one it did not reach is read on a later step (its lane asks again)."""
        for offset, (lane_id, seq) in offsets.items():
            lane = self._partitions.find_lane(partition, lane_id)
            if lane is None or lane.backlog is None:
                continue
            value = found.get(offset)
            if value is not None:
                lane.backlog.fill(seq, self._codec.decode_parked(value)[1])
            elif offset <= reached:  # gone from parked: skipping it beats a lane stuck for good
                log.error("parked task %d of partition %d is missing", seq, partition)
                lane.backlog.remove(seq)

    def _read(self, partition: int, offsets: list[int]) -> tuple[dict[int, bytes], int]:
        """The values at ``offsets`` (sorted) of one partition of ``parked``, read in one pass
        from the first, at most ``SCAN_SPAN`` records on; and the offset the pass reached
        (short of that only when no record came for ``STALL_S``)."""
        if self._reader is None:
            self._reader = self._make_reader()
        reader = self._reader
        found: dict[int, bytes] = {}
        want, last = set(offsets), min(offsets[-1], offsets[0] + SCAN_SPAN)
        reached = offsets[0] - 1
        reader.assign([TopicPartition(self._topic, partition, offsets[0])])
        # Reads until every wanted offset is passed; a pass that gets no record for STALL_S (a
        # broker outage) gives up for this step and the lanes ask again on a later one: the
        # loop keeps running, and /healthz and /readyz answering, however long the broker is away.
        last_record = time.monotonic()
        while reached < last:
            if time.monotonic() - last_record > STALL_S:
                break
            for message in reader.consume(SCAN_BATCH, 0.05):
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("reading back %s/%d: %s", self._topic, partition, error)
                        return found, reached  # tried again on a later step
                    reached = max(reached, offsets[-1])  # the end: nothing further to find
                    continue
                last_record = time.monotonic()
                offset = message.offset() or 0
                reached = max(reached, offset)
                value = message.value()
                if offset in want and value is not None:
                    found[offset] = value
        return found, reached

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
