"""Dispatcher limits: a per-workspace cap on concurrent deliveries and a per-subscription
rate limit, both only delaying deliveries, never losing them."""

from __future__ import annotations

from dataclasses import replace

from tests.support.kafka import produce_json
from tests.support.receiver import Receiver, Reply
from tests.support.subs import SubsWriter
from tests.support.worker import running
from worker.subscriptions.secrets import generate_secret

HOLD_S = 0.3


def max_overlap(arrivals: list[float], hold: float) -> int:
    return max(sum(1 for other in arrivals if t - hold < other <= t) for t in arrivals)


def test_workspace_cap_bounds_concurrency(settings_factory):
    settings = settings_factory(max_in_flight_per_workspace=2)
    writer = SubsWriter(settings)
    with Receiver() as receiver:
        names = []
        for i in range(6):
            secret = generate_secret()
            url = receiver.endpoint(f"c{i}", secret, lambda n, b: Reply(delay_s=HOLD_S))
            writer.create("capped", url, ["*"], secret=secret, ordered=False)
            names.append(f"c{i}")
        secret = generate_secret()
        free_url = receiver.endpoint("free", secret, lambda n, b: Reply(delay_s=HOLD_S))
        for _ in range(3):
            writer.create("other", free_url, ["*"], secret=secret, ordered=False)
        events = [{"event": "x.created", "workspace": "capped", "id": f"e{i}"} for i in range(3)]
        events += [{"event": "x.created", "workspace": "other", "id": f"o{i}"} for i in range(3)]
        with running(settings):
            produce_json(settings.bootstrap_servers, settings.input_topics, events)
            for name in names:
                receiver.wait_for(name, 3, timeout=60)
            receiver.wait_for("free", 9, timeout=60)
    capped = sorted(r.arrived for n in names for r in receiver.received(n))
    assert len(capped) == 18
    # Arrivals are recorded when a request starts; each is held HOLD_S.
    assert max_overlap(capped, HOLD_S * 0.9) <= 2
    free = sorted(r.arrived for r in receiver.received("free"))
    assert max_overlap(free, HOLD_S * 0.9) <= 2
    # The cap is per workspace, not global: both workspaces ran side by side.
    assert max_overlap(sorted(capped + free), HOLD_S * 0.9) >= 3


def test_rate_limit_spaces_deliveries(settings_factory):
    settings = settings_factory()
    writer = SubsWriter(settings)
    with Receiver() as receiver:
        secret = generate_secret()
        url = receiver.endpoint("limited", secret)
        sub = writer.create("acme", url, ["*"], secret=secret, ordered=False)
        writer.writer.put(replace(sub, rate_limit=5.0))
        events = [{"event": "x.created", "workspace": "acme", "id": f"r{i}"} for i in range(15)]
        with running(settings):
            produce_json(settings.bootstrap_servers, settings.input_topics, events)
            got = receiver.wait_for("limited", 15, timeout=60)
    arrivals = sorted(r.arrived for r in got)
    # A burst of 5, then 5 per second: 15 deliveries need at least ~2 seconds.
    assert arrivals[-1] - arrivals[0] >= 1.8
    assert {r.json["id"] for r in got} == {e["id"] for e in events}
