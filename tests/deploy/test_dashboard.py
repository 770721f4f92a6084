"""deploy/grafana: the dashboard is importable and provisionable, and every query it holds
returns data from a real Prometheus that scraped a real worker, or the real management API,
under load.

The worker's live test starts the worker (role all) on the dev broker with endpoints that
succeed, fail twice with 503, answer 400, or always 503 (and get auto-disabled), a Prometheus
process scraping it every second with the alert rules loaded, and then asks Prometheus for each
panel query as Grafana would. The API's live test does the same for the "Management API" row
with `webhook-worker api`, a token, and requests that succeed, fail (401, 404) and are
rate-limited (429).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.api import api_settings, client, running_api, token_maker
from tests.support.kafka import produce_json
from tests.support.receiver import Receiver, always, fail_first
from tests.support.subs import SubsWriter
from tests.support.worker import running
from worker.config import Settings
from worker.kafka.devbroker import terminate
from worker.kafka.processes import free_port
from worker.subscriptions.secrets import generate_secret

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "webhook-worker.json"
PROVISIONING = DEPLOY / "grafana" / "provisioning"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
JOB = "webhook-worker"
API_JOB = "webhook-worker-api"
API_ROW = "Management API"
# What Grafana would put in place of its interval macros and the dashboard's variables.
SUBSTITUTIONS = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1m",
    "$job": JOB,
    "${job}": JOB,
    "$api_job": API_JOB,
    "${api_job}": API_JOB,
}
REQUIRED_PANELS = {
    "Throughput by outcome",
    "Success rate",
    "Attempt latency",
    "End-to-end latency",
    "Retries by delay",
    "Dead letters by reason",
    "Consumer lag by group and topic",
    "In flight and parked",
    "Disabled endpoints",
    "Subscriptions by status",
}
REQUIRED_API_PANELS = {
    "API requests by status class",
    "API latency by route",
    "API 5xx ratio",
    "API index lag",
    "API rate-limited requests",
}
EVENTS = 300
# One decode and one validation failure.
INVALID = [b"not json", b'{"event": "contact.updated"}']


def load_dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that shows data, including those inside collapsed rows."""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def rows(dashboard: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Row title -> the panels under it (those after it in the list, or inside it when
    collapsed), up to the next row."""
    out: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            current = out.setdefault(panel["title"], [])
            current.extend(panel.get("panels", []))
        else:
            current.append(panel)
    return out


def is_api_panel(panel: dict[str, Any]) -> bool:
    """A panel of the management API: its queries select the API's job."""
    return any("api_job" in target["expr"] for target in panel["targets"])


def queries(dashboard: dict[str, Any], *, api: bool) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of the API's panels (``api``) or the
    worker's, with Grafana's macros substituted."""
    out = []
    for panel in panels(dashboard):
        if is_api_panel(panel) != api:
            continue
        for target in panel["targets"]:
            expr = target["expr"]
            for macro in sorted(SUBSTITUTIONS, key=len, reverse=True):
                expr = expr.replace(macro, SUBSTITUTIONS[macro])
            assert "$" not in expr, f"{panel['title']}: unsubstituted variable in {expr}"
            out.append((panel["title"], expr))
    return out


# Static checks: importable, provisionable, every panel on the datasource variable.


def test_every_panel_uses_the_datasource_variable() -> None:
    dashboard = load_dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["job"]["datasource"] == DATASOURCE
    assert variables["job"]["current"]["value"] == JOB
    titles = []
    for panel in panels(dashboard):
        titles.append(panel["title"])
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]
    assert len(titles) == len(set(titles)), "panel titles must be unique"
    assert set(titles) >= REQUIRED_PANELS
    rows = [p for p in dashboard["panels"] if p["type"] == "row"]
    ids = [p["id"] for p in rows] + [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert dashboard["uid"] == "webhook-worker"
    assert "__inputs" not in dashboard, "provisioning cannot fill __inputs: use the variable"


def test_the_api_row_holds_the_api_panels_on_the_api_job() -> None:
    """The management API has its own scrape job; its panels select it through the api_job
    variable, every other panel through job (the worker's)."""
    dashboard = load_dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    api_job = variables["api_job"]
    assert api_job["datasource"] == DATASOURCE
    assert api_job["current"]["value"] == API_JOB
    assert "webhook_api_" in api_job["definition"], "the API exports no webhook_build_info"
    by_row = rows(dashboard)
    api_panels = by_row[API_ROW]
    assert {p["title"] for p in api_panels} >= REQUIRED_API_PANELS
    for title, row in by_row.items():
        for panel in row:
            for target in panel["targets"]:
                expr = target["expr"]
                if title == API_ROW:
                    assert "$api_job" in expr and "$job" not in expr, (panel["title"], expr)
                else:
                    assert "$api_job" not in expr, (panel["title"], expr)
    # Every API metric is on a panel.
    exprs = " ".join(t["expr"] for p in api_panels for t in p["targets"])
    for metric in (
        "webhook_api_requests_total",
        "webhook_api_request_duration_seconds_bucket",
        "webhook_api_index_lag_records",
        "webhook_api_index_caught_up",
        "webhook_api_rate_limited_total",
    ):
        assert metric in exprs, metric


def test_provisioning_points_at_prometheus_and_the_dashboard_folder() -> None:
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert source["isDefault"] is True
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "webhook-worker.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


# The live test.


class Prometheus:
    """A real ``prometheus`` process on 127.0.0.1 and a client for its HTTP API."""

    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def value(self, expr: str) -> float:
        """The single value of a query that aggregates to one series (NaN when empty)."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if len(result) == 1 else math.nan

    def wait(self, expr: str, check: Callable[[float], bool], timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while True:
            value = self.value(expr)
            if check(value):
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout}s for {expr}: last value {value}")
            time.sleep(0.5)


@contextmanager
def prometheus(tmp_path: Path, target_port: int, job: str = JOB) -> Iterator[Prometheus]:
    exe = shutil.which("prometheus")
    if exe is None:
        pytest.fail(
            "prometheus not found on PATH: install Debian's prometheus package "
            "(apt-get install -y prometheus); this test does not skip"
        )
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                exe,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Prometheus(f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, f"prometheus exited: {log.read_text()[-2000:]}"
            try:
                if httpx.get(f"{server.url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"prometheus not ready: {log.read_text()[-2000:]}"
            time.sleep(0.2)
        yield server
    finally:
        terminate(proc, grace_s=10)


@pytest.mark.integration
def test_every_panel_query_has_data(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    started = time.monotonic()
    settings = settings_factory(partitions=3, retry_delays="200ms,400ms", disable_after_failures=3)
    writer = SubsWriter(settings)
    behaviours = {
        "ok0": None,
        "ok1": None,
        "ok2": None,
        "flaky0": fail_first(2, status=503),
        "flaky1": fail_first(2, status=503),
        "bad": always(400),
        "dying": always(503),
    }
    with Receiver() as receiver:
        for name, behaviour in behaviours.items():
            secret = generate_secret()
            url = receiver.endpoint(name, secret, behaviour)
            writer.create("acme", url, ["*"], secret=secret, ordered=name != "ok2")
        with running(settings) as worker, prometheus(tmp_path, worker.port) as prom:
            prom.wait(f'sum(up{{job="{JOB}"}})', lambda v: v == 1, timeout=15)
            for batch in range(6):
                if batch in (0, 3):
                    # Invalid records in two waves: their series only exist once the first
                    # arrives (it is not pre-initialised), so only the second wave can show
                    # up in rate() and increase().
                    produce_json(
                        settings.bootstrap_servers, settings.input_topics, INVALID, raw=True
                    )
                events = [
                    {"id": f"e{batch}-{n}", "event": "contact.updated", "workspace": "acme"}
                    for n in range(EVENTS // 6)
                ]
                produce_json(settings.bootstrap_servers, settings.input_topics, events)
                time.sleep(0.5)
            for name in ("ok0", "ok1", "ok2"):
                receiver.wait_for_success(name, EVENTS, timeout=30)
            for name in ("flaky0", "flaky1"):
                receiver.wait_for_success(name, EVENTS, timeout=30)
            # Every delivery finished for good, and a scrape after the table was recounted.
            prom.wait("sum(webhook_deliveries_total)", lambda v: v >= EVENTS * len(behaviours), 30)
            prom.wait('max(webhook_subscriptions{status="TOO_MANY_ERRORS"})', lambda v: v >= 2, 15)

            empty = []
            for title, expr in queries(load_dashboard(), api=False):
                values = [float(s["value"][1]) for s in prom.query(expr)]
                if not any(math.isfinite(v) for v in values):
                    empty.append(f"{title}: {expr} -> {values}")
            assert not empty, "panels without data:\n" + "\n".join(empty)

            # The data is the run's, not zeros from pre-initialised series.
            window = "[2m]"
            assert prom.value(f"sum(increase(webhook_retries_scheduled_total{window}))") >= 4
            assert (
                prom.value(
                    f'sum(increase(webhook_dead_letters_total{{reason="client_error"}}{window}))'
                )
                >= 1
            )
            assert prom.value(f"sum(increase(webhook_events_invalid_total{window}))") >= 2
            assert prom.value('max(webhook_subscriptions{status="TOO_MANY_ERRORS"})') == 2
            assert (
                prom.value(f'sum(increase(webhook_deliveries_total{{outcome="success"}}{window}))')
                >= 5 * EVENTS
            )

            # The alert rules load and evaluate against the real series without errors.
            rules = httpx.get(f"{prom.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
            health = {r["name"]: r["health"] for g in rules for r in g["rules"]}
            assert len(health) >= 7 and set(health.values()) == {"ok"}, health
    assert time.monotonic() - started < 60, "over the 60 s budget"


@pytest.mark.integration
def test_every_api_panel_query_has_data(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    started = time.monotonic()
    # A low per-token rate limit, so some requests are refused with 429.
    settings = replace(
        api_settings(settings_factory(), str(tmp_path / "api")),
        api_rate_limit=2.0,
        api_rate_burst=4,
    )
    with (
        token_maker(settings) as tokens,
        running_api(settings) as api,
        prometheus(tmp_path, api.port, job=API_JOB) as prom,
    ):
        prom.wait(f'sum(up{{job="{API_JOB}"}})', lambda v: v == 1, timeout=15)
        token = tokens.workspace("acme")
        with client(api, token) as authorised, client(api, None) as anonymous:
            # Waves a few scrapes apart: the series exist from the first, so rate() and the
            # latency quantiles see the later ones.
            statuses: dict[int, int] = {}
            for _ in range(5):
                for response in (
                    authorised.get("/v1/workspaces/acme/subscriptions"),
                    authorised.get("/v1/workspaces/acme/subscriptions/sub_missing"),
                    authorised.get("/v1/event-types"),
                    anonymous.get("/v1/workspaces/acme/subscriptions"),
                    *(authorised.get("/v1/event-types") for _ in range(6)),
                ):
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                time.sleep(1.5)
        assert {200, 401, 404, 429} <= set(statuses), statuses
        prom.wait(
            f'sum(webhook_api_rate_limited_total{{job="{API_JOB}"}})',
            lambda v: v >= statuses[429],
            15,
        )
        time.sleep(2)  # one more scrape after the last wave

        empty = []
        api_queries = queries(load_dashboard(), api=True)
        assert len(api_queries) >= 6
        for title, expr in api_queries:
            values = [float(s["value"][1]) for s in prom.query(expr)]
            if not any(math.isfinite(v) for v in values):
                empty.append(f"{title}: {expr} -> {values}")
        assert not empty, "panels without data:\n" + "\n".join(empty)

        # The data is the run's.
        window = "[2m]"
        by_class = {
            s["metric"]["status_class"]: float(s["value"][1])
            for s in prom.query(
                f"sum by (status_class) (increase(webhook_api_requests_total{window}))"
            )
        }
        assert by_class.get("2xx", 0) >= 5 and by_class.get("4xx", 0) >= 10, by_class
        assert prom.value(f"sum(increase(webhook_api_rate_limited_total{window}))") >= 1
        assert prom.value("min(webhook_api_index_caught_up)") == 1
        assert prom.value("max(webhook_api_index_lag_records)") == 0

        # The API's alert rules load and evaluate against its real series without errors.
        groups = httpx.get(f"{prom.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        health = {r["name"]: r["health"] for g in groups for r in g["rules"]}
        api_rules = {"WebhookApiDown", "WebhookApiErrors", "WebhookApiIndexLagging"}
        assert api_rules <= set(health) and {health[r] for r in api_rules} == {"ok"}, health
        alerts = httpx.get(f"{prom.url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        assert not [a for a in alerts if a["labels"]["alertname"] in api_rules], alerts
    assert time.monotonic() - started < 60, "over the 60 s budget"
