"""What the dispatcher knows per owned partition: its assignment generation, the offsets a
previous owner finished past its commit (skipped, not sent again), and its ordered lanes,
rebuilt from ``parked`` (and the recently settled deliveries from ``attempts`` and ``dlq``)
on assignment and forgotten on revoke or loss. Key lanes that only wait are kept packed
(:mod:`worker.dispatch.dormant`) and unpacked when looked up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from confluent_kafka import Consumer

from worker.codec.records import RecordCodec
from worker.dispatch import dormant
from worker.dispatch.backlog import Tally
from worker.dispatch.clock import Clock
from worker.dispatch.dedupe import Settled, read_settled
from worker.dispatch.disabling import FailureTracker
from worker.dispatch.ordering import Lane, LaneId, Work
from worker.dispatch.rebuild import read_parked
from worker.kafka.offsets import MAX_RANGES, OffsetBook, expand_ranges, ranges_of
from worker.kafka.topics import Topics
from worker.model import EndpointHealth
from worker.subscriptions.model import Status, Subscription

__all__ = ["Partitions"]

log = logging.getLogger(__name__)


class Partitions:
    """Generations, skips and lanes of the partitions this member owns."""

    def __init__(
        self,
        *,
        topics: Topics,
        codec: RecordCodec,
        make_reader: Callable[[], Consumer],
        settled: Settled,
        clock: Clock,
        failures: FailureTracker,
        lookup: Callable[[str], Subscription | None],
    ) -> None:
        self._topics = topics
        self._codec = codec
        self._make_reader = make_reader
        self._settled = settled
        self._clock = clock
        self._failures = failures
        self._lookup = lookup
        self.gen: dict[int, int] = {}
        self._generations = 0
        # partition -> subscription -> ordering key (None: the whole endpoint) -> lane
        self.lanes: dict[int, dict[str, dict[bytes | None, Lane]]] = {}
        # (partition, subscription) -> its key lanes that only wait, packed
        self.packed: dict[tuple[int, str], dormant.PackedLanes] = {}
        self.tally = Tally()
        # Lanes whose next parked task must be read back from parked, in the order they asked,
        # and how many of them each subscription has.
        self.wanting: dict[tuple[int, LaneId], None] = {}
        self._wanting_per_sub: dict[str, int] = {}
        # Offsets a previous owner finished past its commit: skipped, not sent again.
        self._skip: dict[tuple[str, int], set[int]] = {}

    # -- generations ------------------------------------------------------------------------

    def current(self, work: Work) -> bool:
        """The work belongs to the partition's current assignment (not a revoked one)."""
        return work.gen == self.gen.get(work.partition, -1)

    def generation(self, partition: int) -> int:
        return self.gen.get(partition, 0)

    @property
    def owned(self) -> list[int]:
        return list(self.gen)

    # -- skips ------------------------------------------------------------------------------

    def skip(self, topic: str, partition: int, offset: int) -> bool:
        """True (once) if a previous owner already finished this offset."""
        skip = self._skip.get((topic, partition))
        if skip and offset in skip:
            skip.discard(offset)
            return True
        return False

    def progress(self, offsets: OffsetBook) -> Iterator[tuple[str, int, list[int]]]:
        """Per owned partition, the finished offsets a restart could read again, with those
        inherited and not yet reached (so the next owner knows them too)."""
        for topic, partition, ranges in offsets.progress():
            if partition in self.gen:
                inherited = self._skip.get((topic, partition))
                floor = offsets.floor(topic, partition)
                if inherited and floor is not None:  # below the commit: never read again
                    inherited.difference_update([o for o in inherited if o < floor])
                if inherited:
                    ranges = ranges_of(sorted(expand_ranges(ranges) | inherited), MAX_RANGES)
                yield topic, partition, ranges

    # -- lanes ------------------------------------------------------------------------------

    def lane(self, partition: int, lane_id: LaneId) -> Lane:
        sub_lanes = self.lanes.setdefault(partition, {}).setdefault(lane_id[0], {})
        lane = sub_lanes.get(lane_id[1])
        if lane is None:
            lane = sub_lanes[lane_id[1]] = self._unpack(partition, lane_id) or Lane(self.tally)
        return lane

    def find_lane(self, partition: int, lane_id: LaneId) -> Lane | None:
        lane = self._unpacked(partition, lane_id)
        if lane is None:
            lane = self._unpack(partition, lane_id)
            if lane is not None:
                self.lanes.setdefault(partition, {}).setdefault(lane_id[0], {})[lane_id[1]] = lane
        return lane

    def settle(self, partition: int, lane_id: LaneId, lane: Lane) -> None:
        """Pack a key lane that only waits (nothing in flight, held or unacknowledged). Called
        once its last write is acknowledged: no callback holds the Lane object any more."""
        sub_id, digest = lane_id
        if digest is None or not dormant.packable(lane):
            return
        if self._unpacked(partition, lane_id) is not lane:
            return  # a stale callback's lane: the table has moved on
        self._remove(partition, lane_id)
        self.packed.setdefault((partition, sub_id), dormant.PackedLanes()).put(
            digest, dormant.pack(lane)
        )

    def _unpack(self, partition: int, lane_id: LaneId) -> Lane | None:
        sub_id, digest = lane_id
        table = self.packed.get((partition, sub_id))
        record = table.pop(digest) if table is not None and digest is not None else None
        if record is None:
            return None
        assert table is not None
        if not len(table):
            del self.packed[(partition, sub_id)]
        return dormant.unpack(record, self.tally)

    def drop_lane_if_idle(self, partition: int, lane_id: LaneId) -> None:
        lane = self._unpacked(partition, lane_id)
        if lane is not None and lane.idle:
            self._remove(partition, lane_id)

    def _unpacked(self, partition: int, lane_id: LaneId) -> Lane | None:
        """The lane if it is held unpacked (a packed one is not looked at)."""
        sub_lanes = self.lanes.get(partition, {}).get(lane_id[0])
        return sub_lanes.get(lane_id[1]) if sub_lanes else None

    def _remove(self, partition: int, lane_id: LaneId) -> None:
        """Take an unpacked lane out of the table (and its subscription's, once empty)."""
        lanes = self.lanes[partition]
        sub_lanes = lanes[lane_id[0]]
        del sub_lanes[lane_id[1]]
        if not sub_lanes:
            del lanes[lane_id[0]]

    def held_scope(self, partition: int, sub_id: str) -> str | None:
        """The scope of a subscription's lanes that still hold work in the partition
        (``endpoint`` or ``key``), or None. Idle lanes are dropped, so any lane holds work."""
        sub_lanes = self.lanes.get(partition, {}).get(sub_id)
        if not sub_lanes:
            return "key" if (partition, sub_id) in self.packed else None
        return "endpoint" if None in sub_lanes else "key"

    def all_lanes(self) -> Iterator[Lane]:
        """The unpacked lanes (a packed one holds nothing in memory but its index)."""
        for lanes in self.lanes.values():
            for sub_lanes in lanes.values():
                yield from sub_lanes.values()

    def parked_count(self) -> int:
        return self.tally.parked

    def next_work(self, partition: int, lane_id: LaneId, lane: Lane) -> Work | None:
        """The lane's next task to attempt; None, and the lane queued for a read-back, when
        its next parked task's body is not in memory."""
        nxt = lane.next_work(self._topics.parked, partition, self.gen.get(partition, 0))
        if nxt is None and lane.reading and (partition, lane_id) not in self.wanting:
            self.wanting[(partition, lane_id)] = None
            sub_id = lane_id[0]
            self._wanting_per_sub[sub_id] = self._wanting_per_sub.get(sub_id, 0) + 1
        return nxt

    def unwant(self, key: tuple[int, LaneId]) -> None:
        """The lane's read-back is being served (it asks again if it needs more)."""
        if key in self.wanting:
            del self.wanting[key]
            sub_id = key[1][0]
            left = self._wanting_per_sub[sub_id] - 1
            if left:
                self._wanting_per_sub[sub_id] = left
            else:
                del self._wanting_per_sub[sub_id]

    def wanting_count(self, sub_id: str) -> int:
        return self._wanting_per_sub.get(sub_id, 0)

    # -- assignment -------------------------------------------------------------------------

    def assign(self, partitions: list[int]) -> list[tuple[int, LaneId]]:
        """Take the new ones among ``partitions``: rebuild their lanes and skips from
        ``parked``, learn what settled recently; returns the lanes with parked tasks and no
        head, to be given their turn (a lane with a head waits for its retry)."""
        new = sorted(set(partitions) - set(self.gen))
        rebuilt = read_parked(self._make_reader, self._topics.parked, new, self._codec, self.tally)
        if self._settled.window_ms > 0:
            now_ms = self._clock.now_ms()
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
        headless: list[tuple[int, LaneId]] = []
        for p in new:
            self._generations += 1
            self.gen[p] = self._generations
            self._restore_health(rebuilt[p].health)
            for topic, offsets in rebuilt[p].finished.items():
                self._skip[(topic, p)] = offsets
                log.info("partition %d of %s: %d records already finished", p, topic, len(offsets))
            lanes = self.lanes[p] = rebuilt[p].lanes
            for sub_id, sub_lanes in list(lanes.items()):
                log.debug("partition %d: %d lanes of %s rebuilt", p, len(sub_lanes), sub_id)
                for digest, lane in list(sub_lanes.items()):
                    if lane.head is None and lane.parked_count:
                        headless.append((p, (sub_id, digest)))
                    self.settle(p, (sub_id, digest), lane)
        return headless

    def _restore_health(self, streaks: list[EndpointHealth]) -> None:
        """Failing endpoints' streaks as the previous owner recorded them; not for an endpoint
        changed since its last failure (``subs enable`` resets the count)."""
        for health in streaks:
            sub = self._lookup(health.subscription_id)
            if sub is None or sub.status is not Status.ACTIVE or sub.updated_ms > health.last_ms:
                continue
            self._failures.restore(sub.id, health.failures, health.since_ms)
            log.info("%s: %d failed attempts in a row restored", sub.id, health.failures)

    def lose(self, gone: set[int]) -> None:
        for p in gone:
            self.gen.pop(p, None)
            for sub_lanes in self.lanes.pop(p, {}).values():
                for lane in sub_lanes.values():
                    lane.forget()
        for table in [k for k in self.packed if k[0] in gone]:
            self.tally.parked -= sum(map(dormant.parked_in, self.packed.pop(table).records()))
        for key in [k for k in self.wanting if k[0] in gone]:
            self.unwant(key)
        self._skip = {k: v for k, v in self._skip.items() if k[1] not in gone}
