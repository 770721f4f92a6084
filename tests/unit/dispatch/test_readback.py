"""Read-back of parked tasks, with a reader whose fetches the test controls.

The reader stands in for the group-less consumer that reads ``parked`` (a Kafka consumer
cannot be made to fetch at a chosen moment, or to report a short end, on purpose): the test
decides what it has fetched when, so the interleavings behind the kill storm's one reorder
(docs/ordering.md, "Read-back") are replayed exactly.
"""

from __future__ import annotations

import time
from collections import deque
from types import SimpleNamespace
from typing import Any, cast

from confluent_kafka import KafkaError, TopicPartition

from worker.codec.avro import AvroCodec
from worker.codec.records import RecordCodec
from worker.dispatch.clock import Clock
from worker.dispatch.dedupe import Settled
from worker.dispatch.disabling import FailureTracker
from worker.dispatch.ordering import Decision, Lane, LaneId, Work
from worker.dispatch.partitions import Partitions
from worker.dispatch.readback import STEP_BUDGET_S, ReadBack
from worker.kafka.topics import Topics
from worker.model import DeliveryTask

CODEC = RecordCodec(AvroCodec())
SUB = "sub_1"
ENDPOINT: LaneId = (SUB, None)


class Message:
    def __init__(
        self, partition: int, offset: int, value: bytes | None, error: int | None = None
    ) -> None:
        self._partition, self._offset, self._value = partition, offset, value
        self._error = KafkaError(error) if error is not None else None

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value

    def error(self) -> KafkaError | None:
        return self._error


class Reader:
    """``parked`` as a dict per partition, and a fetch queue the test fills with ``fetch``."""

    def __init__(self, log: dict[int, dict[int, bytes]]) -> None:
        self.log = log
        self.queue: deque[Message] = deque()
        self.position: dict[int, int] = {}  # the next offset the fetcher asks for
        self.assigned: list[dict[int, int]] = []
        self.timeouts: list[float] = []
        self.short_end: int | None = None  # the end the next assignment's first fetch reports

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.queue.clear()  # librdkafka drops what was fetched for the old assignment
        self.position = {tp.partition: tp.offset for tp in partitions}
        self.assigned.append(dict(self.position))
        if self.short_end is not None:
            for partition in self.position:
                self.fetch(partition, end=self.short_end)
            self.short_end = None

    def fetch(self, partition: int = 0, end: int | None = None) -> None:
        """One fetch response: the records from the fetch position to ``end`` (the end the
        broker reports; the partition's true end when None), then the end-of-partition event
        at that end."""
        if partition not in self.position:
            return
        records = self.log.get(partition, {})
        if end is None:
            end = max(records, default=-1) + 1
        at = self.position[partition]
        for offset in sorted(o for o in records if at <= o < end):
            self.queue.append(Message(partition, offset, records[offset]))
        self.position[partition] = max(at, end)
        self.queue.append(Message(partition, end, None, KafkaError._PARTITION_EOF))

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        self.timeouts.append(timeout)
        return [self.queue.popleft() for _ in range(min(num_messages, len(self.queue)))]

    def close(self) -> None:
        pass


def task(seq: int, copy: str = "") -> DeliveryTask:
    return DeliveryTask(f"msg_{seq}", SUB, "ws", f"e{seq}{copy}", "x.created", b"{}", seq=seq)


class Rig:
    """Partitions owning partition 0, one endpoint lane, a reader and the tasks started."""

    def __init__(self, log: dict[int, dict[int, bytes]]) -> None:
        self.reader = Reader(log)
        self.parts = Partitions(
            topics=cast(Topics, SimpleNamespace(parked="parked")),
            codec=CODEC,
            make_reader=lambda: cast(Any, self.reader),
            settled=Settled(0),
            clock=Clock(),
            failures=FailureTracker(max_failures=0, max_failing_ms=0, disable=lambda a, b: None),
            lookup=lambda sub_id: None,
        )
        self.parts.gen[0] = 1
        self.started: list[Work] = []
        self.read_back = ReadBack(
            make_reader=lambda: cast(Any, self.reader),
            topic="parked",
            codec=CODEC,
            partitions=self.parts,
            start=self.started.append,
        )

    def lane(self, lane_id: LaneId = ENDPOINT) -> Lane:
        lane = self.parts.find_lane(0, lane_id)
        assert lane is not None
        return lane

    def park(self, lane_id: LaneId, seq: int, offset: int) -> None:
        """``seq`` parked and acknowledged at ``offset`` (its body no longer in memory)."""
        lane = self.parts.lane(0, lane_id)
        lane.park(task(seq), offset)

    def turn(self, lane_id: LaneId = ENDPOINT) -> None:
        """The lane's turn comes (its head resolved): it asks for its next body."""
        assert self.parts.next_work(0, lane_id, self.lane(lane_id)) is None

    def seqs(self) -> list[int]:
        return [w.task.seq for w in self.started]


def parked_log(*entries: tuple[int, int]) -> dict[int, dict[int, bytes]]:
    """``parked`` partition 0 with (offset, seq) task entries."""
    return {0: {offset: CODEC.encode_parked("task", task(seq)) for offset, seq in entries}}


def test_a_short_end_reported_by_the_broker_never_skips_a_parked_task() -> None:
    """The reorder: 22 and 23 are parked at offsets 10 and 11. The reader's first answer is
    an end at 10 (a broker's short high watermark: the record at 10 is there but not yet
    reported). Reading that as "nothing further" declared 22 and 23 gone, the lane went on
    with 24, and 22 and 23 were delivered after it by the next owner, who still found them in
    parked: successes out of order. Now the lane waits and 22 goes first."""
    rig = Rig(parked_log((10, 22), (11, 23)))
    rig.park(ENDPOINT, 22, 10)
    rig.park(ENDPOINT, 23, 11)
    rig.turn()
    rig.reader.short_end = 10  # the first answer: the end is 10, though 10 and 11 exist
    for _ in range(5):
        rig.read_back.step()
    # The event after them must wait behind them (it went first with the end taken as proof).
    fresh = Work(task(24), "deliveries", 0, 24, gen=1)
    assert rig.lane().on_fresh(fresh) is Decision.PARK
    assert rig.lane().backlog is not None and rig.lane().backlog.seqs() == [22, 23, 24]
    assert rig.seqs() == [], "nothing may start before 22's body is read"
    rig.reader.fetch()  # the real end
    rig.read_back.step()
    assert rig.seqs() == [22]


def test_an_entry_read_past_and_not_there_is_given_up() -> None:
    """An entry whose offset the reader went past without finding it (gone from parked) is
    skipped, loudly, rather than holding its lane for good."""
    rig = Rig(parked_log((12, 23)))
    rig.park(ENDPOINT, 22, 10)  # its record was removed from parked
    rig.park(ENDPOINT, 23, 12)
    rig.turn()
    rig.read_back.step()  # assigns the reader at 10
    rig.reader.fetch()
    rig.read_back.step()
    assert rig.seqs() == [23]


def test_a_step_never_waits_for_the_broker_and_stays_within_its_budget() -> None:
    # 100,000 parked records between the lane's two tasks: far more than one step may read.
    log = parked_log((0, 1), (100_001, 2))
    log[0].update({o: CODEC.encode_parked("task", task(10**6 + o)) for o in range(1, 100_001)})
    rig = Rig(log)
    rig.park(ENDPOINT, 1, 0)
    rig.park(ENDPOINT, 2, 100_001)
    rig.turn()
    assert rig.read_back.step() is False  # nothing fetched yet: no wait for it
    rig.reader.fetch()
    took = []
    while not rig.started and len(took) < 100:
        began = time.monotonic()
        rig.read_back.step()
        took.append(time.monotonic() - began)
    assert rig.seqs() == [1]
    assert set(rig.reader.timeouts) == {0}, "every read must be non-blocking"
    assert max(took) < STEP_BUDGET_S + 0.05, took


def test_a_lane_waiting_for_its_body_keeps_its_place_and_the_reader_goes_back_for_it() -> None:
    a, b = (SUB + "a", None), (SUB + "b", None)
    rig = Rig(parked_log((5, 1), (6, 2), (20, 3)))
    rig.park(a, 1, 5)
    rig.park(b, 3, 20)
    rig.turn(a)
    rig.turn(b)
    rig.read_back.step()
    assert rig.reader.assigned == [{0: 5}]
    rig.reader.fetch()
    rig.read_back.step()
    assert rig.seqs() == [1, 3]
    # a's next task parked behind the reader's position: it is assigned back to it.
    rig.lane(a).resolved()
    rig.park(a, 2, 6)
    rig.turn(a)
    rig.read_back.step()
    assert rig.reader.assigned[-1] == {0: 6}
    rig.reader.fetch()
    rig.read_back.step()
    assert rig.seqs() == [1, 3, 2]


def test_a_partition_lost_and_taken_again_between_steps_is_read_for_its_new_lanes() -> None:
    """Nothing about a lane is kept from one step to the next: a rebuilt lane (new
    generation, its task now at another offset) gets the body at its own offset."""
    log = parked_log((40, 7))
    log[0][3] = CODEC.encode_parked("task", task(7, "-old"))
    rig = Rig(log)
    rig.park(ENDPOINT, 7, 3)
    rig.turn()
    rig.read_back.step()  # assigned at 3, nothing fetched yet
    rig.parts.lose({0})
    rig.parts.gen[0] = 2
    rig.park(ENDPOINT, 7, 40)
    rig.turn()
    rig.reader.fetch()  # fetched for the old wish: 3 comes first
    rig.read_back.step()
    assert rig.seqs() == [7]
    assert rig.started[0].gen == 2 and rig.started[0].task.event_id == "e7"
