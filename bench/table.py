"""Scenario E: the subscription table at scale, without HTTP: load 100,000 subscriptions over
10,000 workspaces from a real topic, measure load time, resident memory and routing rate."""

from __future__ import annotations

import resource
import time
from typing import Any

from worker.app import Codecs
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
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    index = SubscriptionIndex()
    for value in encoded:
        index.upsert(codec.decode_subscription(value))
    load_s = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
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
        "rss_mb": round(rss_mb),
        "rss_before_mb": round(before / 1024),
        "routing_events_per_s": round(len(events) / route_s),
        "fanned_out": fanned,
        "note": "decode+index from encoded records in memory; see README",
    }
