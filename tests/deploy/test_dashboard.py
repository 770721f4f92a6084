"""deploy/grafana: the dashboard is importable and provisionable, and every query it holds
returns data from a real Prometheus that scraped a real worker under load.

The live test starts the worker (role all) on the dev broker with endpoints that succeed, fail
twice with 503, answer 400, or always 503 (and get auto-disabled), a Prometheus process
scraping it every second with the alert rules loaded, and then asks Prometheus for each panel
query as Grafana would.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.kafka import produce_json
from tests.support.receiver import Receiver, always, fail_first
from tests.support.subs import SubsWriter
from tests.support.worker import running
from worker.config import Settings
from worker.kafka.devbroker import terminate
from worker.subscriptions.secrets import generate_secret

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "webhook-worker.json"
PROVISIONING = DEPLOY / "grafana" / "provisioning"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
JOB = "webhook-worker"
# What Grafana would put in place of its interval macros and the dashboard's variables.
SUBSTITUTIONS = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1m",
    "$job": JOB,
    "${job}": JOB,
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


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target, with Grafana's macros substituted."""
    out = []
    for panel in panels(dashboard):
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
def prometheus(tmp_path: Path, target_port: int) -> Iterator[Prometheus]:
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
            {"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}
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
            for title, expr in queries(load_dashboard()):
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
