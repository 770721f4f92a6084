"""A flood for one key-scoped subscription whose endpoint hangs does not stop another
subscription behind it in the same partition: lanes that have not started are spilled to
``parked`` (the read-ahead budget would otherwise pause the partition until every flooded key
had timed out once) and resumed as their subscription has room. After a kill -9 with spilled
lanes in ``parked``, every event still arrives, in order per key."""

from __future__ import annotations

import threading

from tests.integration.test_key_order import key_violations, wait_until
from tests.support.kafka import produce_json
from tests.support.receiver import Receiver, Reply
from tests.support.subs import SubsWriter
from tests.support.worker import ProcessWorker, metric
from worker.kafka.processes import free_port
from worker.subscriptions.secrets import generate_secret

FLOOD_KEYS = 300
ROUNDS = 4  # events per flooded key
HEALTHY = 100
PAD = 1000  # bytes of padding per flooded event: 1,200 tasks hold ~2.8 MB, the budget is 1 MB
TIMEOUT_MS = 3000  # the hanging endpoint's attempts: 10 at a time, so 100 take >= 30 s


def test_a_hanging_flood_is_spilled_while_others_flow_and_survives_a_kill(settings_factory):
    settings = settings_factory(
        partitions=1,
        retry_delays="1s",
        read_ahead_bytes=1024 * 1024,
        disable_after_failures=0,  # the flood's endpoint fails hundreds of times: keep it
    )
    writer = SubsWriter(settings)
    alive = threading.Event()
    flood = [
        {
            "event": "contact.updated",
            "workspace": "flood",
            "id": f"f{k}-{n}",
            "record": {"id": k},
            "pad": "x" * PAD,
        }
        for n in range(ROUNDS)
        for k in range(FLOOD_KEYS)
    ]
    healthy = [
        {
            "event": "deal.updated",
            "workspace": "calm",
            "id": f"h{i % 20}-{i // 20}",
            "record": {"id": i % 20},
        }
        for i in range(HEALTHY)
    ]
    with Receiver() as receiver:
        secret = generate_secret()
        url = receiver.endpoint(
            "flood", secret, lambda n, b: Reply() if alive.is_set() else Reply(503, hang=True)
        )
        writer.create(
            "flood",
            url,
            ["*"],
            secret=secret,
            ordering="key",
            max_in_flight=10,
            timeout_ms=TIMEOUT_MS,
        )
        calm_secret = generate_secret()
        calm = receiver.endpoint("calm", calm_secret)
        writer.create("calm", calm, ["*"], secret=calm_secret, ordering="key")
        # One partition: the calm subscription's tasks come after the whole flood.
        produce_json(settings.bootstrap_servers, settings.input_topics, flood, key="k")
        produce_json(settings.bootstrap_servers, settings.input_topics, healthy, key="k")

        first = ProcessWorker(settings, free_port())
        try:
            first.wait_ready()
            receiver.wait_for_success("calm", HEALTHY, timeout=90)
            hanging = len(receiver.received("flood"))
            # Without spilling, the partition stays paused until nearly every flooded key's
            # first attempt has timed out (about 250 of them).
            assert hanging <= 100, f"the calm endpoint waited for {hanging} flood attempts"
            spilled = metric(first.port, "webhook_spilled_tasks_total")
            assert spilled > 0, "nothing was spilled"
            first.kill()  # spilled lanes in parked, some resumed, some heads in flight
        finally:
            first.close()

        alive.set()
        second = ProcessWorker(settings, free_port())
        try:
            second.wait_ready()

            def delivered() -> int:
                got = receiver.received("flood")
                return len({r.json["id"] for r in got if r.status_sent == 200})

            wait_until(lambda: delivered() >= len(flood), f"{delivered()} delivered", 180)
        finally:
            second.close()
    got = receiver.received("flood")
    assert {r.json["id"] for r in got if r.status_sent == 200} == {e["id"] for e in flood}
    assert key_violations(got) == []
    assert key_violations(receiver.received("calm")) == []
    assert all(r.verified for r in got)
