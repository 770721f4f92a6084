"""``python -m bench.portal [--subs 1000] [--attempts 1000000] [--screenshots docs/portal]``:
the server time of the API calls the portal's pages make, with many subscriptions and a large
delivery log, then the activity chart's and health's index queries alone (their server time
without HTTP); with ``--screenshots``, the portal's list, detail page and chart as PNGs.

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
import math
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
from worker.deliverylog.health import EndpointHealth
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
    """``attempts`` attempts of ``sub_id`` over the last 5 days, with a daily cycle of
    traffic: most deliveries succeed at once, one in ten after a retry, one in fifty is
    dead-lettered after one, and all first attempts fail in a 3-hour outage two days ago;
    returns the seconds it took."""
    start = time.perf_counter()
    store = Store(index_path(settings))
    now = int(time.time() * 1000)
    day = 86_400_000
    base = (5 * day) / max(attempts, 1)
    at = float(now - 5 * day)
    outage = (now - 2 * day, now - 2 * day + 3 * 3_600_000)
    batch = Batch()
    i = delivery = 0
    while i < attempts:
        retried = delivery % 10 == 0 or delivery % 50 == 1 or outage[0] <= at < outage[1]
        failed = delivery % 50 == 1
        shape = ["retry", "dead_letter" if failed else "success"] if retried else ["success"]
        for n, outcome in enumerate(shape[: attempts - i], start=1):
            at += base / (1 + 0.6 * math.sin(2 * math.pi * (at % day) / day))
            status = 200 if outcome == "success" else 503
            attempt = Attempt(
                delivery_id=f"msg_{delivery:012d}",
                subscription_id=sub_id,
                workspace=WORKSPACE,
                event_id=f"evt_{delivery:012d}",
                event_type="contact.updated",
                attempt=n,
                started_ms=min(int(at), now),
                latency_ms=12.5,
                url="https://hooks.example.com/0",
                outcome=outcome,
                status=status,
                response_body='{"ok": true}' if status == 200 else "upstream unavailable",
            )
            batch.attempts.append(attempt_row(100, i, attempt))
            i += 1
        delivery += 1
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


def _screens(api: ThreadApi, admin: str, sub_id: str, directory: Path) -> None:
    """The detail page, its 7-day activity chart and the list (with health) of the bench's
    subscription, in headless Chromium, as PNGs in ``directory`` (docs/portal/)."""
    from tests.support.browser import chromium, find, wait

    directory.mkdir(parents=True, exist_ok=True)
    with client(api, admin) as c:
        link = c.post(f"/v1/workspaces/{WORKSPACE}/portal-links").json()["url"]
    with chromium(1200, 1000) as driver:
        driver.get(link)
        find(driver, "tr.sub .health", 60)
        driver.save_screenshot(str(directory / "portal-list-health.png"))
        driver.get(f"{api.url}/portal/#/subs/{sub_id}")
        find(driver, "svg.chart rect.ok", 60)
        find(driver, '.segmented button[data-window="7d"]').click()
        wait(lambda: len(driver.find_elements("css selector", "svg.chart rect.ok")) > 24, 30)
        find(driver, "#auto-refresh").click()
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(str(directory / "portal-detail.png"))
        find(driver, "figure.activity").screenshot(str(directory / "portal-activity-chart.png"))
        driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
        )
        time.sleep(0.5)
        driver.save_screenshot(str(directory / "portal-detail-dark.png"))
    print(f"screenshots in {directory}")


def run(subs: int, attempts: int, repeat: int, screens: Path | None = None) -> None:
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
            _queries(settings, ids[0], repeat)
            if screens is not None:
                api = ThreadApi(settings).start()
                try:
                    _screens(api, admin, ids[0], screens)
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
        ("health (detail page)", lambda: portal.get(f"{base}/{sub_id}/health")),
        ("activity chart, 24 h", lambda: portal.get(f"{base}/{sub_id}/activity?window=24h")),
        ("activity chart, 7 d", lambda: portal.get(f"{base}/{sub_id}/activity?window=7d")),
        (
            "health of a list page (100)",
            lambda: portal.get(
                f"/portal/api/v1/workspaces/{WORKSPACE}/subscription-health",
                params=[("id", s["id"]) for s in first["data"]],
            ),
        ),
        (
            "one delivery in full",
            lambda: portal.get(f"{base}/{sub_id}/deliveries/msg_000000000100"),
        ),
    ]
    if last_cursor is None:
        calls.pop(1)
    print(f"{'call':40} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, call in calls:
        p50, p95, worst = _time(call, repeat)
        print(f"{name:40} {p50:8.1f} {p95:8.1f} {worst:8.1f}")
    portal.close()


def _queries(settings: Settings, sub_id: str, repeat: int) -> None:
    """The chart's and health's index queries alone (the server time, without HTTP)."""
    store = Store(index_path(settings))
    health = EndpointHealth(store)
    now = int(time.time() * 1000)
    calls: list[tuple[str, Callable[[], object]]] = [
        ("query: activity 24 h", lambda: health.activity(sub_id, 24, now)),
        ("query: activity 7 d", lambda: health.activity(sub_id, 168, now)),
        ("query: health summary", lambda: health.summary(sub_id, now)),
    ]
    for name, call in calls:
        samples = []
        for _ in range(repeat):
            began = time.perf_counter()
            call()
            samples.append((time.perf_counter() - began) * 1000)
        samples.sort()
        p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
        print(f"{name:40} {statistics.median(samples):8.2f} {p95:8.2f} {samples[-1]:8.2f}")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subs", type=int, default=1000)
    parser.add_argument("--attempts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--screenshots", type=Path, help="also save the portal's screenshots there (Chromium)"
    )
    args = parser.parse_args()
    run(args.subs, args.attempts, args.repeat, args.screenshots)


if __name__ == "__main__":
    main()
