"""Reading parked tasks back from ``parked`` when their lane's turn comes.

A lane keeps only the index of its parked tasks (:mod:`worker.dispatch.backlog`). When its
next task's body is not in memory the lane asks for it (``Partitions.wanting``). Each loop
step serves the lanes that asked, up to a window per lane and a budget over all, with one
reader consumer, and never waits for the broker: it takes only what the reader has already
fetched, for at most ``STEP_BUDGET_S``, and the lanes it did not reach ask again on a later
step while the reader's fetcher, on librdkafka's thread, reads on.

The invariant that makes this safe (docs/ordering.md, "Read-back"): a step chooses its lanes,
reads, gives them their bodies and starts their next tasks in one synchronous call, so no
other code of the loop changes a lane between the choice and the hand-off. Nothing about a
lane is carried from one step to the next; only the reader's position is, and a step moves it
back (re-assigns) whenever a wanted offset lies behind it. A parked entry is given up as gone
only when the step itself read past its offset without finding it; the end of the partition
counts only up to the offset the broker reported as its end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, TopicPartition

from worker.codec.records import RecordCodec
from worker.dispatch.ordering import LaneId, Work
from worker.dispatch.partitions import Partitions
from worker.model import DeliveryTask

__all__ = ["READ_BACK_BUDGET", "READ_BACK_WINDOW", "STEP_BUDGET_S", "ReadBack"]

log = logging.getLogger(__name__)

READ_BACK_WINDOW = 64  # parked tasks read back per lane at a time
READ_BACK_BUDGET = 4096  # read-back bodies held at once, over all lanes
STEP_BUDGET_S = 0.004  # the longest one step reads and decodes (the loop's other work waits)
SCAN_BATCH = 200  # records taken from the reader's queue at once (it never waits)
# A wanted offset further than this past the reader's position is reached by a seek, not by
# reading what lies between (a flood's parked tasks are scattered between other lanes').
SCAN_SPAN = 5000

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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._make_reader = make_reader
        self._topic = topic
        self._codec = codec
        self._partitions = partitions
        self._start = start
        self._clock = clock
        self._reader: Consumer | None = None
        # partition -> the next offset the reader hands out (what it is assigned to read)
        self._position: dict[int, int] = {}

    def step(self) -> bool:
        """Serve waiting lanes with what the reader has fetched; True if it read anything."""
        parts = self._partitions
        if not parts.wanting or parts.tally.read_back >= READ_BACK_BUDGET:
            return False
        chosen, wanted = self._choose(READ_BACK_BUDGET - parts.tally.read_back)
        if not wanted:
            self._serve(chosen)
            return False
        found, reached, progressed = self._read(wanted)
        for partition, offsets in wanted.items():
            self._fill(partition, offsets, found, reached.get(partition, -1))
        self._serve(chosen)
        return progressed

    def _serve(self, chosen: list[tuple[int, LaneId]]) -> None:
        """Each chosen lane's next task, if its body is here now; a lane still waiting for
        its body keeps its place among those that asked (the reader is on its way to it)."""
        parts = self._partitions
        for key in chosen:
            partition, lane_id = key
            lane = parts.find_lane(partition, lane_id)
            nxt = parts.next_work(partition, lane_id, lane) if lane is not None else None
            if nxt is not None:
                self._start(nxt)
            if lane is None or not lane.reading:
                parts.unwant(key)

    def _choose(self, room: int) -> tuple[list[tuple[int, LaneId]], dict[int, _Wanted]]:
        """The lanes served this step (in the order they asked) and, per partition, the
        offsets to read for them."""
        parts = self._partitions
        chosen: list[tuple[int, LaneId]] = []
        wanted: dict[int, _Wanted] = {}
        for key in list(parts.wanting):
            if room <= 0:
                break
            partition, lane_id = key
            lane = parts.find_lane(partition, lane_id)
            if lane is None or lane.backlog is None or not lane.reading:
                parts.unwant(key)  # served or gone meanwhile
                continue
            window = lane.backlog.wanted(min(READ_BACK_WINDOW, room))
            room -= len(window)
            chosen.append(key)
            for seq, offset in window:
                wanted.setdefault(partition, {})[offset] = (lane_id, seq)
        return chosen, wanted

    def _fill(
        self,
        partition: int,
        offsets: _Wanted,
        found: dict[tuple[int, int], DeliveryTask],
        reached: int,
    ) -> None:
        """Bodies found go to their lanes; an entry this step read past without finding is
        gone from ``parked``; one it did not reach is read on a later step (its lane asks
        again)."""
        for offset, (lane_id, seq) in offsets.items():
            lane = self._partitions.find_lane(partition, lane_id)
            if lane is None or lane.backlog is None:
                continue
            task = found.get((partition, offset))
            if task is not None:
                lane.backlog.fill(seq, task)
            elif offset <= reached:  # gone from parked: skipping it beats a lane stuck for good
                log.error("parked task %d of partition %d is missing", seq, partition)
                lane.backlog.remove(seq)

    def _read(
        self, wanted: dict[int, _Wanted]
    ) -> tuple[dict[tuple[int, int], DeliveryTask], dict[int, int], bool]:
        """The tasks at the wanted offsets that the reader has fetched, read for at most
        ``STEP_BUDGET_S``; per partition the last offset this step read past (every offset
        from the first wanted up to it was seen); and whether anything was read."""
        reader = self._position_reader(wanted)
        deadline = self._clock() + STEP_BUDGET_S
        found: dict[tuple[int, int], DeliveryTask] = {}
        # Nothing at or below the reader's position was read this step.
        reached = {p: self._position[p] - 1 for p in wanted}
        last = {p: min(max(o), min(o) + SCAN_SPAN) for p, o in wanted.items()}
        progressed = False
        while any(reached[p] < last[p] for p in wanted) and self._clock() < deadline:
            messages = reader.consume(SCAN_BATCH, 0)
            if not messages:
                break  # nothing fetched yet: the fetcher reads on, a later step takes it
            progressed = True
            for message in messages:
                partition = message.partition() or 0
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("reading back %s/%d: %s", self._topic, partition, error)
                        continue
                    # The end as the broker reported it: only what lies below it is known
                    # not to be there (a short end, as some brokers report, proves nothing).
                    if partition in reached:
                        reached[partition] = max(reached[partition], (message.offset() or 0) - 1)
                    continue
                offset = message.offset() or 0
                if partition not in self._position or offset < self._position[partition]:
                    continue  # not read for any lane (a partition no longer wanted)
                self._position[partition] = offset + 1
                if partition not in reached:
                    continue
                reached[partition] = offset
                value = message.value()
                if offset in wanted[partition] and value is not None:
                    found[(partition, offset)] = self._codec.decode_parked(value)[1]
        return found, reached, progressed

    def _position_reader(self, wanted: dict[int, _Wanted]) -> Consumer:
        """The reader, assigned at or before every partition's first wanted offset: a
        partition read past it, newly wanted, or too far behind it is assigned again."""
        if self._reader is None:
            self._reader = self._make_reader()
        targets: dict[int, int] = {}
        moved = False
        for partition, offsets in wanted.items():
            first = min(offsets)
            at = self._position.get(partition)
            if at is None or at > first or first - at > SCAN_SPAN:
                at, moved = first, True
            targets[partition] = at
        if moved:  # (partitions no longer wanted are left out: their fetching stops)
            self._reader.assign(
                [TopicPartition(self._topic, p, offset) for p, offset in sorted(targets.items())]
            )
            self._position = targets
        return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
            self._position = {}
