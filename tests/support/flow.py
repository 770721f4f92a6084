"""Checks shared by the broker-failure tests: events over a few keys, first arrivals and
first successes per endpoint, and the per-key / per-endpoint order of what arrived."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from tests.support.kafka import consume_all
from tests.support.receiver import Receiver, Reply
from worker.codec.avro import AvroCodec
from worker.codec.records import RecordCodec
from worker.config import Settings


def keyed_events(start: int, count: int, keys: int, workspace: str = "acme") -> list[dict]:
    """``count`` events from number ``start`` on, spread round-robin over ``keys`` records
    (ordering key ``deal/r<k>``)."""
    return [
        {
            "event": "deal.updated",
            "workspace": workspace,
            "id": f"x{n:06d}",
            "entity": "deal",
            "record": {"id": f"r{n % keys}", "n": n},
        }
        for n in range(start, start + count)
    ]


def fail_first_try_of_every(nth: int) -> Callable[[int, bytes], Reply]:
    """Every ``nth`` event fails once (503), then succeeds: retries are always pending."""
    seen: set[str] = set()

    def behaviour(_n: int, body: bytes) -> Reply:
        event_id = body.split(b'"id":"', 1)[1].split(b'"', 1)[0].decode()
        first = event_id not in seen
        seen.add(event_id)
        return Reply(status=503 if first and int(event_id[1:]) % nth == 0 else 200)

    return behaviour


def successes(receiver: Receiver, name: str) -> dict[str, float]:
    """Event id -> arrival of its first 2xx, in arrival order."""
    out: dict[str, float] = {}
    for r in receiver.received(name):
        if 200 <= r.status_sent < 300:
            out.setdefault(r.json["id"], r.arrived)
    return out


def dead_lettered(settings: Settings) -> dict[str, set[str]]:
    """Subscription id -> ids of the events dead-lettered for it."""
    codec = RecordCodec(AvroCodec())
    out: dict[str, set[str]] = {}
    for record in consume_all(settings.bootstrap_servers, settings.topic_prefix + "dlq"):
        letter = codec.decode_dead_letter(record.value)
        out.setdefault(letter.task.subscription_id, set()).add(letter.task.event_id)
    return out


def key_order_violations(
    receiver: Receiver, name: str, events: list[dict], dead: set[str]
) -> list[str]:
    """Pairs of one key's events whose first successes came in the wrong order (events
    dead-lettered are left out: the next one of the key may then go first)."""
    rank = {e["id"]: n for n, e in enumerate(events)}
    key_of = {e["id"]: e["record"]["id"] for e in events}
    last: dict[str, str] = {}
    violations = []
    for event_id in successes(receiver, name):
        if event_id in dead or event_id not in rank:
            continue
        key = key_of[event_id]
        before = last.get(key)
        if before is not None and rank[before] > rank[event_id]:
            violations.append(f"{name}: {event_id} after {before} (key {key})")
        last[key] = event_id
    return violations


def endpoint_order_violations(
    receiver: Receiver, name: str, events: list[dict], dead: set[str]
) -> list[str]:
    """First successes of a strictly ordered endpoint that came before an earlier event's."""
    rank = {e["id"]: n for n, e in enumerate(events)}
    ranks = [rank[e] for e in successes(receiver, name) if e not in dead and e in rank]
    return [f"{name}: x{b:06d} after x{a:06d}" for a, b in itertools.pairwise(ranks) if b < a]


def wait_settled(
    receiver: Receiver,
    settings: Settings,
    expected: dict[str, tuple[str, list[dict]]],
    timeout: float,
) -> dict[str, set[str]]:
    """Wait until every event of each endpoint (name -> (subscription id, events)) has a 2xx
    or a dead letter; returns the dead letters per endpoint name."""
    deadline = time.monotonic() + timeout
    dead: dict[str, set[str]] = {}
    next_read = 0.0
    while True:
        missing = {
            name: {e["id"] for e in events} - set(successes(receiver, name)) - dead.get(name, set())
            for name, (_sub, events) in expected.items()
        }
        if not any(missing.values()):
            return {name: dead.get(name, set()) for name in expected}
        if time.monotonic() >= next_read:
            by_sub = dead_lettered(settings)
            dead = {name: by_sub.get(sub, set()) for name, (sub, _e) in expected.items()}
            next_read = time.monotonic() + 3
        if time.monotonic() > deadline:
            sample = {n: (len(m), sorted(m)[:3]) for n, m in missing.items() if m}
            raise AssertionError(f"neither delivered nor dead-lettered after {timeout}s: {sample}")
        time.sleep(0.2)
