"""``python -m bench.lane_memory [--lanes 100000]``: what a flood leaves mapped, by how waiting
key lanes are kept.

Each run (a process of its own) keeps ``--lanes`` waiting lanes (a head and up to four parked
tasks each) while a flood's short-lived objects come and go around them: every lane is touched
five times, each touch parking one more task and allocating two decoded-task-like objects that
live until the flood is over. Then the flood's objects are freed, ``malloc_trim`` runs (as the
dispatcher's does every 10 s), and the RSS is read. Three ways to keep the lanes:

- ``lanes``: :class:`~worker.dispatch.ordering.Lane` objects in a dict by key digest;
- ``records``: packed records (:mod:`worker.dispatch.dormant`) in a dict by key digest;
- ``buckets``: packed records in :class:`~worker.dispatch.dormant.PackedLanes`, as the
  dispatcher keeps them.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import sys
from typing import Any

from bench.procstat import rss_mb
from worker.dispatch import dormant
from worker.dispatch.backlog import Tally
from worker.dispatch.ordering import HeadRef, Lane, key_digest
from worker.memory import release_free_memory
from worker.model import DeliveryTask

TOUCHES = 5


def touched(lane: Lane, n: int, round_: int) -> None:
    """One touch: the lane gets a head (first) or one more parked task, acknowledged."""
    if round_ == 0:
        lane.head, lane.head_durable, lane.max_seq = HeadRef(f"msg_{n:022d}", 1, n), True, n
        return
    seq = round_ * 1_000_000 + n
    lane.park(DeliveryTask(f"msg_{seq:022d}", "sub", "ws", "e", "t", b"{}", seq=seq))
    lane.acked(seq, seq)


def run(way: str, lanes: int) -> dict[str, Any]:
    base = rss_mb()
    tally = Tally()
    by_digest: dict[bytes, Any] = {}
    table = dormant.PackedLanes()
    flood: list[dict[str, Any]] = []
    for round_ in range(TOUCHES):
        for n in range(lanes):
            digest = key_digest(str(n).encode())
            if way == "lanes":
                lane = by_digest.setdefault(digest, Lane(tally))
            else:
                record = table.pop(digest) if way == "buckets" else by_digest.pop(digest, None)
                lane = dormant.unpack(record, tally) if record is not None else Lane(tally)
            touched(lane, n, round_)
            if way == "buckets":
                table.put(digest, dormant.pack(lane))
            elif way == "records":
                by_digest[digest] = dormant.pack(lane)
            flood.extend({"id": f"evt_{n}_{i}", "body": b"x" * 300} for i in range(2))
    peak = rss_mb()
    del flood
    gc.collect()
    release_free_memory()
    end = rss_mb()
    return {
        "way": way,
        "base_mb": round(base, 1),
        "peak_mb": round(peak, 1),
        "end_mb": round(end, 1),
    }


def _child(way: str, lanes: int, out: Any) -> None:
    out.put(run(way, lanes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lane_memory")
    parser.add_argument("--lanes", type=int, default=100_000)
    args = parser.parse_args(argv)
    ctx = multiprocessing.get_context("spawn")
    for way in ("lanes", "records", "buckets"):
        out = ctx.Queue()
        child = ctx.Process(target=_child, args=(way, args.lanes, out))
        child.start()
        print(out.get(), flush=True)
        child.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
