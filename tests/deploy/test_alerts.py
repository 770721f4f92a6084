"""deploy/prometheus: the rules and the scrape config pass promtool, the promtool unit tests
pass and cover every alert both ways, and the alerts use only series the worker and the API
export."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from worker.observability.api_metrics import ApiMetrics
from worker.observability.metrics import Metrics

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts.test.yml"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"

# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = {"job", "instance"}
SELECTOR = re.compile(r"\b(webhook_[a-z0-9_]+)\s*(?:\{([^}]*)\})?")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail(
            "promtool not found on PATH: install Debian's prometheus package "
            "(apt-get install -y prometheus); these tests do not skip"
        )
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, timeout=60, cwd=PROMETHEUS_DIR
    )


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def exported_series() -> dict[str, dict[str, set[str]]]:
    """Sample name -> label -> values seen, from real registries (the worker's and the API's)
    with every series touched."""
    metrics = Metrics(input_topics=["events"], retry_delays=["5s", "30s"])
    metrics.event_consumed("events")
    metrics.event_invalid("decode")
    metrics.tasks_routed(2)
    metrics.attempt("success", "2xx", 0.01)
    metrics.delivery_outcome("success")
    metrics.end_to_end(0.2)
    metrics.retry_scheduled("5s")
    metrics.dead_letter("client_error")
    metrics.in_flight_inc()
    metrics.parked(1)
    metrics.oldest_due_retry("5s", 0.0)
    metrics.consumer_lag("webhook-worker-router", "events", 0, 3)
    metrics.subscriptions({"ACTIVE": 1})
    metrics.build_info("0")
    api = ApiMetrics()
    api.request("/v1/workspaces/{ws}/subscriptions", "GET", 200, 0.01)
    api.request("/v1/workspaces/{ws}/subscriptions", "POST", 503, 0.01)
    api.rate_limited()
    api.index_lag.set(0)
    api.index_ready.set(1)
    series: dict[str, dict[str, set[str]]] = {}
    samples = [s for r in (metrics.registry, api.registry) for f in r.collect() for s in f.samples]
    for sample in samples:
        labels = series.setdefault(sample.name, {})
        for name, value in sample.labels.items():
            labels.setdefault(name, set()).add(value)
    return series


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config(tmp_path: Path) -> None:
    # The config names alerts.yml relative to itself: check a copy of both, side by side, so
    # the check cannot pass by finding some other alerts.yml.
    shutil.copy(CONFIG, tmp_path / "prometheus.yml")
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    result = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout, result.stdout


def scrape_jobs() -> dict[str, dict[str, Any]]:
    config = yaml.safe_load(CONFIG.read_text())
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_scrape_config_targets_router_dispatcher_and_api() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    assert config["rule_files"] == ["alerts.yml"]
    jobs = scrape_jobs()
    targets = {t for sc in jobs["webhook-worker"]["static_configs"] for t in sc["targets"]}
    assert targets == {"router:9400", "dispatcher:9400"}
    api = jobs["webhook-worker-api"]
    assert {t for sc in api["static_configs"] for t in sc["targets"]} == {"api:8088"}
    assert api.get("metrics_path", "/metrics") == "/metrics"


def test_promtool_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(ALERTS_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout, result.stdout


def test_every_alert_is_tested_firing_and_quiet() -> None:
    doc = yaml.safe_load(ALERTS_TEST.read_text())
    assert doc["rule_files"] == ["alerts.yml"]
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in doc["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert len(names) >= 10
    assert {"WebhookApiDown", "WebhookApiErrors", "WebhookApiIndexLagging"} <= names
    assert names - fires == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested staying quiet"
    assert (fires | quiet) - names == set(), "tests of alerts that do not exist"


def test_every_alert_has_for_severity_and_text() -> None:
    for rule in alert_rules():
        name = rule["alert"]
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), name
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"].strip(), name
        assert rule["annotations"]["description"].strip(), name


def test_alerts_use_only_exported_series() -> None:
    series = exported_series()
    used: set[str] = set()
    for rule in alert_rules():
        expr = rule["expr"]
        labels_in_expr = set(TARGET_LABELS)
        for metric, matchers in SELECTOR.findall(expr):
            assert metric in series, f"{rule['alert']}: {metric} is not exported"
            used.add(metric)
            labels_in_expr |= series[metric].keys()
            for label, op, value in MATCHER.findall(matchers):
                assert label in series[metric], f"{rule['alert']}: {metric} has no {label}"
                if op == "=":
                    assert value in series[metric][label], f"{rule['alert']}: {label}={value}"
        for grouping in GROUPING.findall(expr):
            for label in filter(None, (g.strip() for g in grouping.split(","))):
                assert label in labels_in_expr, f"{rule['alert']}: no label {label}"
        if "up{" in expr:
            jobs = re.findall(r'up\{job="([^"]*)"', expr)
            assert jobs and set(jobs) <= set(scrape_jobs()), rule["alert"]
    # The regexes really found the metrics (a broken pattern would make this test vacuous).
    assert {
        "webhook_dead_letters_total",
        "webhook_attempts_total",
        "webhook_consumer_lag",
        "webhook_retry_oldest_due_seconds",
        "webhook_subscriptions",
        "webhook_api_requests_total",
        "webhook_api_index_lag_records",
    } <= used
