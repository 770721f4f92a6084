"""Read-back passes run off the loop: a step never waits for the broker, and the lanes are
served on the first step after the pass ends."""

from __future__ import annotations

import asyncio
import threading

from tests.support.dispatch import partitions
from worker.codec.avro import AvroCodec
from worker.codec.records import RecordCodec
from worker.dispatch.ordering import Work, key_digest
from worker.dispatch.readback import ReadBack
from worker.model import DeliveryTask

CODEC = RecordCodec(AvroCodec())
KEYED = ("sub", key_digest(b"contact/1"))


class Message:
    def __init__(self, offset: int, value: bytes) -> None:
        self._offset, self._value = offset, value

    def error(self) -> None:
        return None

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value


class HeldReader:
    """A reader whose fetch returns only once the test lets it (a broker slow to serve)."""

    def __init__(self, records: dict[int, bytes]) -> None:
        self.records = records
        self.release = threading.Event()
        self.start = 0

    def assign(self, partitions: list[object]) -> None:
        self.start = partitions[0].offset  # type: ignore[attr-defined]

    def consume(self, n: int, timeout: float) -> list[Message]:
        self.release.wait(5)
        found = [Message(o, v) for o, v in sorted(self.records.items()) if o >= self.start]
        self.start = max(self.records) + 1
        return found

    def close(self) -> None:
        pass


def test_a_slow_pass_does_not_hold_the_step_and_its_lanes_are_served_after_it():
    async def scenario() -> None:
        parts = partitions()
        parts.gen[0] = 1
        lane = parts.lane(0, KEYED)
        task = DeliveryTask("m5", "sub", "ws", "e", "t", b"{}", seq=5, ordering="key")
        lane.park(task)
        lane.acked(5, 100)  # durable at offset 100 of parked: the body leaves memory
        assert parts.next_work(0, KEYED, lane) is None and parts.wanting
        reader = HeldReader({100: CODEC.encode_parked("task", task)})
        started: list[Work] = []
        wake = asyncio.Event()
        read_back = ReadBack(
            make_reader=lambda: reader,  # type: ignore[arg-type,return-value]
            topic="parked",
            codec=CODEC,
            partitions=parts,
            start=started.append,
            wake=wake,
        )
        try:
            assert read_back.step() is False  # the pass starts on its thread
            assert read_back.step() is False and started == []  # it waits: the step does not
            reader.release.set()
            await asyncio.wait_for(wake.wait(), 5)  # the pass's end wakes the loop
            assert read_back.step() is True
            assert [w.task.delivery_id for w in started] == ["m5"] and started[0].from_parked
            assert parts.tally.read_back == 1
        finally:
            reader.release.set()
            read_back.close()

    asyncio.run(scenario())


def test_a_pass_for_a_partition_lost_meanwhile_fills_nothing():
    async def scenario() -> None:
        parts = partitions()
        parts.gen[0] = 1
        lane = parts.lane(0, KEYED)
        task = DeliveryTask("m5", "sub", "ws", "e", "t", b"{}", seq=5, ordering="key")
        lane.park(task)
        lane.acked(5, 100)
        parts.next_work(0, KEYED, lane)
        reader = HeldReader({100: CODEC.encode_parked("task", task)})
        started: list[Work] = []
        read_back = ReadBack(
            make_reader=lambda: reader,  # type: ignore[arg-type,return-value]
            topic="parked",
            codec=CODEC,
            partitions=parts,
            start=started.append,
        )
        try:
            read_back.step()
            parts.lose({0})  # revoked while the pass reads
            reader.release.set()
            for _ in range(100):
                if read_back.step():
                    break
                await asyncio.sleep(0.01)
            assert started == [] and parts.tally.read_back == 0
        finally:
            read_back.close()

    asyncio.run(scenario())
