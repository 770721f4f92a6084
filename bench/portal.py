"""``python -m bench.portal [--subs 1000] [--attempts 1000000]``: the server time of the API
calls the portal's pages make, with many subscriptions and a large delivery log.

On the embedded broker: ``--subs`` subscriptions in one workspace (created through the API
with an admin token, challenge skipped), and ``--attempts`` attempts of one subscription
written straight into the API's delivery-log index (the SQLite file the API builds from the
``attempts`` topic; producing a million attempts through Kafka would measure the indexer,
not the page). Then a portal session (a real link, spent) calls what the pages call, each
call ``--repeat`` times, timed on loopback: the numbers include the HTTP round trip, so they
bound the server time from above.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.broker import local_broker
from bench.rig import make_settings
from tests.support.api import ThreadApi, client, token_maker
from worker.catalogue import example_catalogue_path
from worker.config import Settings
from worker.deliverylog.rows import attempt_row
from worker.deliverylog.store import Batch, Store, index_path
from worker.model import Attempt

WORKSPACE = "bench"
_BATCH = 50_000


def _subscriptions(api: ThreadApi, admin: str, count: int) -> list[str]:
    ids = []
    with client(api, admin) as c:
        for i in range(count):
            response = c.post(
                f"/v1/workspaces/{WORKSPACE}/subscriptions",
                json={
                    "url": f"https://hooks.example.com/{i}",
                    "events": ["contact.*", "deal.stage_changed"],
                    "name": f"endpoint {i}",
                    "skip_challenge": True,
                },
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    return ids


def _fill_log(settings: Settings, sub_id: str, attempts: int) -> float:
    """``attempts`` attempts of ``sub_id`` (two per delivery: a retry, then a success, or a
    dead letter for one in fifty), over the last days; returns the seconds it took."""
    start = time.perf_counter()
    store = Store(index_path(settings))
    now = int(time.time() * 1000)
    step = max(1, (5 * 86_400_000) // max(attempts, 1))
    batch = Batch()
    for i in range(attempts):
        delivery = i // 2
        final = i % 2 == 1
        failed = delivery % 50 == 0
        outcome = "retry" if not final else ("dead_letter" if failed else "success")
        status = 200 if outcome == "success" else 503
        attempt = Attempt(
            delivery_id=f"msg_{delivery:012d}",
            subscription_id=sub_id,
            workspace=WORKSPACE,
            event_id=f"evt_{delivery:012d}",
            event_type="contact.updated",
            attempt=1 + i % 2,
            started_ms=now - (attempts - i) * step,
            latency_ms=12.5,
            url="https://hooks.example.com/0",
            outcome=outcome,
            status=status,
            response_body='{"ok": true}' if status == 200 else "upstream unavailable",
        )
        batch.attempts.append(attempt_row(100, i, attempt))
        if len(batch.attempts) >= _BATCH:
            store.write(batch)
            batch = Batch()
    if batch:
        store.write(batch)
    store.close()
    return time.perf_counter() - start


def _time(call: Callable[[], httpx.Response], repeat: int) -> tuple[float, float, float]:
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = call()
        samples.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.text
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    return statistics.median(samples), p95, samples[-1]


def run(subs: int, attempts: int, repeat: int) -> None:
    with local_broker() as broker, tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(
            broker.bootstrap,
            f"portal{int(time.time())}",
            2,
            api_port=0,
            api_data_dir=str(Path(tmp) / "api"),
            api_rate_limit=0,
            event_types=str(example_catalogue_path()),
            portal_key="bench-portal-key-" + "x" * 32,
        )
        with token_maker(settings) as tokens:
            admin = tokens.admin()
            api = ThreadApi(settings).start()
            try:
                began = time.perf_counter()
                ids = _subscriptions(api, admin, subs)
                print(f"created {subs} subscriptions in {time.perf_counter() - began:.1f}s")
            finally:
                api.stop()
            print(f"indexed {attempts} attempts in {_fill_log(settings, ids[0], attempts):.1f}s")
            api = ThreadApi(settings).start()
            try:
                _measure(api, admin, ids[0], repeat)
            finally:
                api.stop()


def _measure(api: ThreadApi, admin: str, sub_id: str, repeat: int) -> None:
    with client(api, admin) as c:
        link = c.post(f"/v1/workspaces/{WORKSPACE}/portal-links").json()["url"]
    portal = httpx.Client(base_url=api.url, timeout=60)
    opened = portal.post("/portal/session", json={"link": link.split("#", 1)[1]})
    assert opened.status_code == 200, opened.text
    base = f"/portal/api/v1/workspaces/{WORKSPACE}/subscriptions"
    first = portal.get(base, params={"limit": 100}).json()
    last_cursor = first["next_cursor"]
    cursor = last_cursor
    while cursor:  # the cursor of the last page ("Load more" pressed until the end)
        last_cursor = cursor
        cursor = portal.get(base, params={"limit": 100, "cursor": cursor}).json()["next_cursor"]
    calls: list[tuple[str, Callable[[], httpx.Response]]] = [
        ("list: first page (100 of all)", lambda: portal.get(base, params={"limit": 100})),
        (
            "list: last page (Load more)",
            lambda: portal.get(base, params={"limit": 100, "cursor": last_cursor}),
        ),
        ("event types (form, catalogue)", lambda: portal.get("/portal/api/v1/event-types")),
        ("subscription", lambda: portal.get(f"{base}/{sub_id}")),
        ("log: deliveries (50)", lambda: portal.get(f"{base}/{sub_id}/deliveries?limit=50")),
        (
            "log: deliveries, failed only",
            lambda: portal.get(f"{base}/{sub_id}/deliveries?limit=50&outcome=dead_letter"),
        ),
        ("log: latest attempts (200)", lambda: portal.get(f"{base}/{sub_id}/attempts?limit=200")),
        (
            "log: one delivery's attempts",
            lambda: portal.get(f"{base}/{sub_id}/attempts?event_id=evt_000000000100&limit=100"),
        ),
        ("dead letters (50)", lambda: portal.get(f"{base}/{sub_id}/dead-letters?limit=50")),
    ]
    if last_cursor is None:
        calls.pop(1)
    print(f"{'call':40} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, call in calls:
        p50, p95, worst = _time(call, repeat)
        print(f"{name:40} {p50:8.1f} {p95:8.1f} {worst:8.1f}")
    portal.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subs", type=int, default=1000)
    parser.add_argument("--attempts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    run(args.subs, args.attempts, args.repeat)


if __name__ == "__main__":
    main()
