"""The dispatcher reads ``deliveries`` ahead of its attempts only as far as its memory budget
(``WEBHOOK_READ_AHEAD_MB``) allows: behind a held ordered endpoint it stops reading, and once
the endpoint answers it reads on and delivers every task, in order. Past the point where every
attempt slot has work queued it reads on slowly, but it reads on."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.support.kafka import produce_json
from tests.support.receiver import Received, Receiver, Reply
from tests.support.subs import SubsWriter
from tests.support.worker import metric, running
from worker.config import Settings
from worker.dispatch.ordering import HELD_TASK_OVERHEAD
from worker.dispatch.readahead import POLL_BATCH
from worker.subscriptions.secrets import generate_secret

PAD = 1000  # bytes of padding per event
HOLD_S = 3.0
PER_TASK = PAD + 200 + HELD_TASK_OVERHEAD  # the envelope around the padding is < 200 B


def read_ahead(port: int) -> float:
    return metric(port, "webhook_read_ahead_bytes")


def held_endpoint_run(settings: Settings, events: int) -> tuple[list[float], list[Received]]:
    """``events`` tasks for one ordered endpoint whose first delivery is held HOLD_S: the
    read-ahead gauge sampled while it is held, then every delivery."""
    writer = SubsWriter(settings)
    with Receiver() as receiver:
        secret = generate_secret()
        hold: Callable[[int, bytes], Reply] = lambda n, body: Reply(  # noqa: E731
            delay_s=HOLD_S if n == 1 else 0
        )
        url = receiver.endpoint("held", secret, hold)
        writer.create("acme", url, ["*"], secret=secret, ordered=True)
        batch = [
            {"event": "x.created", "workspace": "acme", "id": f"e{i:05d}", "pad": "x" * PAD}
            for i in range(events)
        ]
        with running(settings) as worker:
            produce_json(settings.bootstrap_servers, settings.input_topics, batch, key="acme")
            receiver.wait_for("held", 1, timeout=60)
            samples = []
            until = time.monotonic() + HOLD_S * 0.6
            while time.monotonic() < until:
                samples.append(read_ahead(worker.port))
                time.sleep(0.05)
            got = receiver.wait_for("held", events, timeout=120)
    assert [r.json["id"] for r in got] == [e["id"] for e in batch], "all delivered, in order"
    return samples, got


def test_reading_stops_at_the_budget_and_resumes_in_order(settings_factory):
    budget, events = 64 * 1024, 3000
    settings = settings_factory(partitions=1, read_ahead_bytes=budget)
    samples, _ = held_endpoint_run(settings, events)
    # It read ahead past the budget, then stopped: it holds the budget plus at most one read
    # (one poll batch) before the count that paused it; the whole backlog is 5x that.
    assert min(samples) > budget
    assert max(samples) <= budget + POLL_BATCH * PER_TASK < events * PER_TASK / 5


def test_with_every_slot_fed_it_still_reads_on_to_find_other_endpoints(settings_factory):
    # Full speed only up to 8 x 2 unstarted tasks; the budget (64 MiB) holds them all.
    events = 1000
    settings = settings_factory(partitions=1, max_in_flight=2)
    samples, _ = held_endpoint_run(settings, events)
    assert max(samples) >= events * (PAD + HELD_TASK_OVERHEAD) * 0.95, "it read (almost) all"
