"""The dispatcher reads ``deliveries`` ahead of its attempts only as far as its memory budget
(``WEBHOOK_READ_AHEAD_MB``) allows: behind a held ordered endpoint it stops reading, and once
the endpoint answers it reads on and delivers every task, in order."""

from __future__ import annotations

import re
import time

import httpx

from tests.support.kafka import produce_json
from tests.support.receiver import Receiver, Reply
from tests.support.subs import SubsWriter
from tests.support.worker import running
from worker.dispatch.dispatcher import HELD_TASK_OVERHEAD, POLL_BATCH
from worker.subscriptions.secrets import generate_secret

READ_AHEAD = re.compile(r"^webhook_read_ahead_bytes (\S+)$", re.MULTILINE)
BUDGET = 64 * 1024
EVENTS = 3000
PAD = 1000  # bytes of padding per event, so the whole backlog is ~100x the budget
HOLD_S = 3.0


def read_ahead(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    match = READ_AHEAD.search(text)
    assert match, "webhook_read_ahead_bytes is not exported"
    return float(match.group(1))


def test_reading_stops_at_the_budget_and_resumes_in_order(settings_factory):
    settings = settings_factory(partitions=1, read_ahead_bytes=BUDGET)
    writer = SubsWriter(settings)
    with Receiver() as receiver:
        secret = generate_secret()
        # The first delivery is held: every later task of this ordered endpoint must wait.
        hold = lambda n, body: Reply(delay_s=HOLD_S if n == 1 else 0)  # noqa: E731
        url = receiver.endpoint("held", secret, hold)
        writer.create("acme", url, ["*"], secret=secret, ordered=True)
        events = [
            {"event": "x.created", "workspace": "acme", "id": f"e{i:05d}", "pad": "x" * PAD}
            for i in range(EVENTS)
        ]
        with running(settings) as worker:
            produce_json(settings.bootstrap_servers, settings.input_topics, events, key="acme")
            receiver.wait_for("held", 1, timeout=60)
            samples = []
            until = time.monotonic() + HOLD_S * 0.6
            while time.monotonic() < until:
                samples.append(read_ahead(worker.port))
                time.sleep(0.05)
            got = receiver.wait_for("held", EVENTS, timeout=120)
    per_task = PAD + 200 + HELD_TASK_OVERHEAD  # the envelope around the padding < 200 B
    # It read ahead past the budget, then stopped: it holds the budget plus at most one read
    # (one poll batch) before the count that paused it; the whole backlog is 5x that.
    assert min(samples) > BUDGET
    assert max(samples) <= BUDGET + POLL_BATCH * per_task < EVENTS * per_task / 5
    ids = [r.json["id"] for r in got]
    assert ids == [e["id"] for e in events], "every task delivered once, in order"
