"""Scenario E: the subscription table at scale, without HTTP: load 100,000 subscriptions over
10,000 workspaces from a real topic, measure load time, resident memory and routing rate.

Runs in a fresh interpreter (``python -m bench.table SUBS WORKSPACES``) and reads the resident
size now (VmRSS), not the peak: a forked child's ``ru_maxrss`` starts at its parent's size.
"""

from __future__ import annotations

import gc
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from bench.procstat import rss_mb
from worker.components import Codecs
from worker.model import Event
from worker.subscriptions.index import SubscriptionIndex
from worker.subscriptions.model import SecretEntry, Subscription
from worker.subscriptions.render import render_body

PATTERNS = [("*",), ("contact.*",), ("deal.updated",), ("contact.saved",), ("incident.*",)]


def scenario_e(subs: int, workspaces: int) -> dict[str, Any]:
    codec = Codecs.load().records
    encoded = [
        codec.encode_subscription(
            Subscription(
                f"sub_{i}",
                f"ws{i % workspaces}",
                "https://example.com/h",
                PATTERNS[i % len(PATTERNS)],
                (SecretEntry("whsec_" + "A" * 43 + "="),),
            )
        )
        for i in range(subs)
    ]
    before = rss_mb()
    start = time.perf_counter()
    index = SubscriptionIndex()
    for value in encoded:
        index.upsert(codec.decode_subscription(value))
    load_s = time.perf_counter() - start
    # The encoded records are the bench's (the worker reads them from the topic): drop them,
    # then take the resident size now (the peak would include building them).
    del encoded
    gc.collect()
    rss_now = rss_mb()
    kinds = ["contact.created", "contact.updated", "deal.updated", "incident.raised", "x.y"]
    events = [
        Event(
            f"e{i}",
            kinds[i % 5],
            f"ws{i % workspaces}",
            None,
            0,
            {
                "id": f"e{i}",
                "event": kinds[i % 5],
                "workspace": f"ws{i % workspaces}",
                "record": {"id": "1"},
            },
            "t/0/0",
        )
        for i in range(50_000)
    ]
    start = time.perf_counter()
    fanned = 0
    for event in events:
        for sub in index.match(event):
            render_body(event, sub)
            fanned += 1
    route_s = time.perf_counter() - start
    return {
        "subscriptions": subs,
        "workspaces": workspaces,
        "load_s": round(load_s, 2),
        "rss_mb": round(rss_now),
        "rss_before_mb": round(before),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "routing_events_per_s": round(len(events) / route_s),
        "fanned_out": fanned,
        "note": "decode+index from encoded records in memory; rss_mb: VmRSS with the index",
    }


def scenario_e_isolated(subs: int, workspaces: int) -> dict[str, Any]:
    """:func:`scenario_e` in its own process, so that ``rss_mb`` is the table's alone."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.table", str(subs), str(workspaces)],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        check=True,
        timeout=600,
    )
    return dict(orjson.loads(out.stdout.splitlines()[-1]))


if __name__ == "__main__":
    print(orjson.dumps(scenario_e(int(sys.argv[1]), int(sys.argv[2]))).decode())
