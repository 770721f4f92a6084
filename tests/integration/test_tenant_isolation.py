"""Randomised workspaces, subscriptions and events: no delivery ever crosses a workspace,
also after subscriptions are updated and deleted while the worker runs."""

from __future__ import annotations

import random
import time
from dataclasses import replace

from tests.support.kafka import produce_json
from tests.support.receiver import Receiver
from tests.support.subs import SubsWriter
from tests.support.worker import running
from worker.subscriptions.secrets import generate_secret

KINDS = ["a.created", "a.updated", "b.created", "c.deleted"]
PATTERNS = [["*"], ["a.*"], ["b.created"], ["a.saved"], ["c.*", "b.*"]]


def test_no_delivery_crosses_workspaces(settings_factory):
    settings = settings_factory(partitions=3)
    rng = random.Random(5)
    writer = SubsWriter(settings)
    workspaces = [f"w{i}" for i in range(8)]
    with Receiver() as receiver:
        subs = {}
        for i in range(24):
            secret = generate_secret()
            name = f"s{i}"
            url = receiver.endpoint(name, secret)
            subs[name] = writer.create(
                rng.choice(workspaces),
                url,
                rng.choice(PATTERNS),
                secret=secret,
                ordered=rng.random() < 0.5,
            )

        def batch(tag: str) -> list[dict]:
            return [
                {"event": rng.choice(KINDS), "workspace": rng.choice(workspaces), "id": f"{tag}{n}"}
                for n in range(600)
            ]

        with running(settings):
            produce_json(
                settings.bootstrap_servers,
                settings.input_topics,
                batch("x"),
                key=lambda e: e["workspace"],
            )
            time.sleep(3)
            deleted = rng.sample(sorted(subs), 6)
            for name in deleted:
                writer.writer.delete(subs[name].id)
            changed = [n for n in sorted(subs) if n not in deleted][:6]
            for name in changed:
                subs[name] = replace(subs[name], events=("*",))
                writer.writer.put(subs[name])
            time.sleep(1.5)  # the table follows the topic
            second = batch("y")
            produce_json(
                settings.bootstrap_servers,
                settings.input_topics,
                second,
                key=lambda e: e["workspace"],
            )
            for name, sub in subs.items():
                if name in deleted:
                    continue
                expected = {
                    e["id"]
                    for e in second
                    if e["workspace"] == sub.workspace and matches(sub.events, e["event"])
                }
                receiver.wait_for_ids(name, expected, timeout=60)
            time.sleep(1)
    crossed = [
        (name, r.json["workspace"])
        for name, sub in subs.items()
        for r in receiver.received(name)
        if r.json["workspace"] != sub.workspace
    ]
    assert crossed == []
    for name in deleted:
        assert not any(r.json["id"].startswith("y") for r in receiver.received(name)), name


def matches(patterns: tuple[str, ...], kind: str) -> bool:
    for p in patterns:
        if p in ("*", kind) or (p.endswith(".*") and kind.startswith(p[:-1])):
            return True
        if p.endswith(".saved") and kind in (p[:-5] + "created", p[:-5] + "updated"):
            return True
    return False
