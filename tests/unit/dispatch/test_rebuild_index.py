"""Rebuilding lanes from ``parked`` entries (as read in log order): only heads are decoded,
parked tasks are indexed from their keys and offsets; last value per key wins."""

from __future__ import annotations

from worker.dispatch.backlog import Tally
from worker.dispatch.ordering import HeadRef, key_digest
from worker.dispatch.rebuild import _Index
from worker.model import DeliveryTask

ENDPOINT = ("sub", None)
KEYED = ("sub", key_digest(b"contact/1"))


def head(seq: int, hop: int = 1) -> DeliveryTask:
    return DeliveryTask(f"m{seq}", "sub", "ws", "e", "t", b"{}", seq=seq, hop=hop)


def test_lanes_from_keys_offsets_and_tombstones():
    index = _Index()
    index.put("task", ENDPOINT, 5, 10, False, None)
    index.put("task", ENDPOINT, 6, 11, False, None)
    index.put("task", KEYED, 7, 12, False, None)
    index.put("task", ENDPOINT, 5, 13, True, None)  # resolved
    index.put("task", KEYED, 8, 14, False, None)
    index.put("head", KEYED, -1, 15, False, head(7))  # 7 failed: the head wins over its entry
    tally = Tally()
    lanes = index.lanes(tally)
    endpoint, keyed = lanes["sub"][None], lanes["sub"][KEYED[1]]
    assert endpoint.head is None and endpoint.backlog is not None
    assert endpoint.backlog.wanted(10) == [(6, 11)] and endpoint.max_seq == 6
    assert keyed.head == HeadRef("m7", 1, 7) and keyed.head_durable
    assert keyed.backlog is not None and keyed.backlog.wanted(10) == [(8, 14)]
    assert tally.parked == 2


def test_a_task_parked_again_after_its_tombstone_is_live_at_its_last_offset():
    index = _Index()
    index.put("task", ENDPOINT, 5, 10, False, None)
    index.put("task", ENDPOINT, 5, 11, True, None)
    index.put("task", ENDPOINT, 5, 12, False, None)
    lanes = index.lanes(Tally())
    backlog = lanes["sub"][None].backlog
    assert backlog is not None and backlog.wanted(10) == [(5, 12)]


def test_a_head_tombstone_clears_the_head():
    index = _Index()
    index.put("head", ENDPOINT, -1, 1, False, head(3))
    index.put("head", ENDPOINT, -1, 2, True, None)
    assert index.lanes(Tally()) == {}
