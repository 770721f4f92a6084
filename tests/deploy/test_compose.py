"""docker-compose.yml and the Dockerfile, checked offline (there is no Docker engine in CI):
every command compose runs exists in the real CLI, every variable it sets is one the settings
read, every mounted file exists, start order is well-formed, and Prometheus and Grafana point
at services and ports that compose defines."""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from worker.cli.main import build_parser
from worker.config import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
REQUIRED = {
    "kafka",
    "topics",
    "router",
    "dispatcher",
    "api",
    "prometheus",
    "grafana",
    "demo-receiver",
    "demo-subscription",
    "demo-producer",
}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def _is_ours(service: dict[str, Any]) -> bool:
    """Built from this repository: the webhook-worker image."""
    build = service.get("build")
    context = build.get("context", ".") if isinstance(build, dict) else build
    return context is not None and (REPO / context).resolve() == REPO


OURS = sorted(name for name, service in SERVICES.items() if _is_ours(service))


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _settings_variables() -> set[str]:
    """Every variable name worker/config.py spells out (the names Settings.from_env reads)."""
    tree = ast.parse((REPO / "worker" / "config.py").read_text())
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"(WEBHOOK|KAFKA)_[A-Z0-9_]+", node.value)
    }


def _bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host path, container path) of every bind mount (named volumes are skipped)."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                mounts.append((volume["source"], volume["target"]))
            continue
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/", "~")):
            mounts.append((source, target))
    return mounts


def _host_path_of(service: dict[str, Any], container_path: str) -> Path | None:
    """The repository file that a container path of ``service`` is mounted from."""
    for source, target in _bind_mounts(service):
        target = target.rstrip("/")
        if container_path == target or container_path.startswith(target + "/"):
            return REPO / source / container_path[len(target) :].lstrip("/")
    return None


def _listening_port(name: str) -> int:
    """The container port a service of ours serves HTTP on, from its own command and env."""
    service = SERVICES[name]
    args = build_parser().parse_args(_command(service))
    if args.command == "demo" and args.action == "receiver":
        return int(args.port)
    if args.command == "api":
        return Settings.from_env(_environment(service), api_port=args.api_port).api_port
    assert args.command == "run", f"{name} serves no HTTP port"
    return Settings.from_env(_environment(service), metrics_port=args.metrics_port).metrics_port


def test_every_required_service_is_defined() -> None:
    assert set(SERVICES) >= REQUIRED, REQUIRED - set(SERVICES)
    assert {"topics", "router", "dispatcher", "api", "demo-receiver"} <= set(OURS)


@pytest.mark.parametrize("name", OURS)
def test_every_command_compose_runs_exists(name: str) -> None:
    command = _command(SERVICES[name])
    try:
        args = build_parser().parse_args(command)
    except SystemExit as exc:
        pytest.fail(f"{name}: `webhook-worker {shlex.join(command)}` does not parse ({exc})")
    assert callable(args.handler)


def test_commands_do_what_their_service_is_named_for() -> None:
    parse = build_parser().parse_args

    def args(name: str) -> Any:
        return parse(_command(SERVICES[name]))

    assert (args("topics").command, args("topics").action) == ("topics", "ensure")
    assert (args("router").command, args("router").role) == ("run", "router")
    assert (args("dispatcher").command, args("dispatcher").role) == ("run", "dispatcher")
    assert args("api").command == "api"
    assert args("api").host == "0.0.0.0"  # reachable from Prometheus and the host
    assert (args("demo-producer").command, args("demo-producer").action) == ("demo", "producer")
    assert args("demo-producer").count == 0  # forever
    receiver, subscribe = args("demo-receiver"), args("demo-subscription")
    assert (receiver.command, receiver.action) == ("demo", "receiver")
    assert receiver.host == "0.0.0.0"  # reachable from the other containers
    assert (subscribe.command, subscribe.action) == ("demo", "subscribe")
    url = urlsplit(subscribe.url)
    assert (url.hostname, url.port) == ("demo-receiver", _listening_port("demo-receiver"))
    assert subscribe.workspace == args("demo-producer").workspace


def test_demo_receiver_and_subscription_share_the_secret() -> None:
    def secret(name: str) -> str | None:
        service = SERVICES[name]
        flag: str | None = build_parser().parse_args(_command(service)).secret
        return flag or Settings.from_env(_environment(service)).demo_secret

    receiver = secret("demo-receiver")
    assert receiver is not None and receiver.startswith("whsec_")
    assert secret("demo-subscription") == receiver


def test_every_variable_set_for_our_services_is_a_setting() -> None:
    known = _settings_variables()
    assert {"KAFKA_BOOTSTRAP_SERVERS", "WEBHOOK_METRICS_PORT", "WEBHOOK_DEMO_SECRET"} <= known
    for name in OURS:
        env = _environment(SERVICES[name])
        # OTEL_*: the OpenTelemetry SDK's standard variables, read by the SDK itself.
        unknown = {n for n in set(env) - known if not n.startswith("OTEL_")}
        assert not unknown, f"{name} sets variables the settings never read: {unknown}"
        Settings.from_env(env)  # and their values parse


def test_every_long_running_service_of_ours_is_health_checked_on_its_own_port() -> None:
    """A service that keeps the image's HEALTHCHECK (which asks /healthz on the container's
    WEBHOOK_METRICS_PORT) must serve that port; one that serves elsewhere (the API, the demo
    receiver) brings a check of its own /healthz."""
    (image_check,) = [rest for word, rest in _dockerfile() if word == "HEALTHCHECK"]
    assert "WEBHOOK_METRICS_PORT" in image_check and "/healthz" in image_check
    checked = set()
    for name in OURS:
        service = SERVICES[name]
        check = service.get("healthcheck") or {}
        if check.get("disable") or service.get("restart", "no") == "no":
            continue
        port = _listening_port(name)
        if "test" not in check:
            args = build_parser().parse_args(_command(service))
            assert args.command == "run", f"{name}: the image's check asks a port it does not serve"
            assert port == Settings.from_env(_environment(service)).metrics_port, name
        else:
            command = " ".join(str(part) for part in check["test"])
            urls = re.findall(r"https?://[^'\" ]+", command)
            assert urls, f"{name}: its healthcheck asks no URL"
            for url in urls:
                parts = urlsplit(url)
                assert parts.port == port, f"{name}: checks port {parts.port}, serves {port}"
                assert parts.path == "/healthz", name
        checked.add(name)
    assert {"router", "dispatcher", "api", "demo-receiver"} <= checked


def test_demo_deliveries_are_allowed_where_they_are_made() -> None:
    dispatcher = Settings.from_env(_environment(SERVICES["dispatcher"]))
    subscription = Settings.from_env(_environment(SERVICES["demo-subscription"]))
    assert dispatcher.allow_private_networks
    assert subscription.allow_http and subscription.allow_private_networks
    # Every service of ours reads the same cluster and topics.
    for name in OURS:
        if name == "demo-receiver":
            continue
        settings = Settings.from_env(_environment(SERVICES[name]))
        assert settings.bootstrap_servers == "kafka:9092", name
        assert settings.input_topics == dispatcher.input_topics, name
        assert settings.retry_delays_ms == dispatcher.retry_delays_ms, name


@pytest.mark.parametrize("name", sorted(n for n in SERVICES if _bind_mounts(SERVICES[n])))
def test_every_bind_mounted_path_exists(name: str) -> None:
    for source, _target in _bind_mounts(SERVICES[name]):
        assert (REPO / source).exists(), f"{name} mounts {source}, which is not in the repository"


def test_the_build_context_has_the_dockerfile() -> None:
    assert OURS
    assert (REPO / "Dockerfile").is_file()


def test_depends_on_names_services_and_start_order_is_sound() -> None:
    for name, service in SERVICES.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {dep: {"condition": "service_started"} for dep in depends}
        for dep, spec in depends.items():
            assert dep in SERVICES, f"{name} depends on undefined service {dep}"
            condition = spec.get("condition", "service_started")
            assert condition in CONDITIONS, f"{name} -> {dep}: {condition}"
            target = SERVICES[dep]
            if condition == "service_healthy":
                check = target.get("healthcheck") or {}
                assert not check.get("disable"), f"{name} waits for {dep}'s disabled healthcheck"
                assert check.get("test") or _is_ours(target), f"{dep} has no healthcheck"
            if condition == "service_completed_successfully":
                assert target.get("restart", "no") == "no", f"{dep} is one-shot but restarts"
    _assert_acyclic()


def _assert_acyclic() -> None:
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"depends_on cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for dep in SERVICES[name].get("depends_on") or {}:
            visit(dep, (*path, name))
        done.add(name)

    for name in SERVICES:
        visit(name, ())


def test_published_host_ports_are_unique_and_reach_the_listening_port() -> None:
    seen: dict[str, str] = {}
    for name, service in SERVICES.items():
        for port in service.get("ports") or []:
            host, container = str(port).rsplit(":", 1)
            assert host not in seen, f"{name} and {seen[host]} both publish {host}"
            seen[host] = name
            if name in OURS:
                assert int(container) == _listening_port(name), name
    assert {"9090", "3000"} <= set(seen)
    assert seen["9090"] == "prometheus" and seen["3000"] == "grafana"


def _prometheus_config() -> tuple[Path, dict[str, Any]]:
    prometheus = SERVICES["prometheus"]
    flags = dict(
        f.split("=", 1) for f in prometheus.get("command") or [] if f.startswith("--") and "=" in f
    )
    inside = flags.get("--config.file", "/etc/prometheus/prometheus.yml")
    path = _host_path_of(prometheus, inside)
    assert path is not None, f"prometheus reads {inside}, which no bind mount provides"
    assert path.is_file(), f"{path.relative_to(REPO)} is missing"
    return path, yaml.safe_load(path.read_text())


def test_prometheus_scrapes_services_and_ports_compose_defines() -> None:
    path, config = _prometheus_config()
    targets = [
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs") or []
        for target in static["targets"]
    ]
    hosts = {target.rsplit(":", 1)[0] for target in targets}
    assert {"router", "dispatcher", "api"} <= hosts
    for target in targets:
        host, port = target.rsplit(":", 1)
        if host in ("localhost", "127.0.0.1"):
            continue  # Prometheus scraping itself
        assert host in SERVICES, f"{target}: no such service"
        assert int(port) == _listening_port(host), f"{target}: {host} listens elsewhere"
    for rules in config.get("rule_files") or []:
        assert list(path.parent.glob(rules)), f"rule file {rules} is not next to {path.name}"


def test_grafana_gets_the_provisioning_and_the_dashboard() -> None:
    grafana = SERVICES["grafana"]
    env = _environment(grafana)
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Admin"
    provisioning = _host_path_of(grafana, "/etc/grafana/provisioning")
    assert provisioning == REPO / "deploy/grafana/provisioning"
    dashboard_dirs = {
        target.rsplit("/", 1)[0]
        for source, target in _bind_mounts(grafana)
        if source.endswith("deploy/grafana/webhook-worker.json")
    }
    assert dashboard_dirs == {"/var/lib/grafana/dashboards"}
    dashboard = json.loads((REPO / "deploy/grafana/webhook-worker.json").read_text())
    assert dashboard.get("panels")

    providers = _provisioning_files(provisioning / "dashboards")
    paths = {p["options"]["path"].rstrip("/") for doc in providers for p in doc["providers"]}
    assert "/var/lib/grafana/dashboards" in paths, paths
    sources = [
        ds for doc in _provisioning_files(provisioning / "datasources") for ds in doc["datasources"]
    ]
    prometheus = [ds for ds in sources if ds["type"] == "prometheus"]
    assert prometheus, "no Prometheus data source is provisioned"
    for ds in prometheus:
        url = urlsplit(ds["url"])
        assert url.hostname == "prometheus" and url.port == 9090, ds["url"]


def _provisioning_files(folder: Path) -> list[dict[str, Any]]:
    files = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])
    assert files, f"no provisioning files in {folder.relative_to(REPO)}"
    return [yaml.safe_load(f.read_text()) for f in files]


# --- Dockerfile ---------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    return instructions


def _exec_form(arguments: str) -> list[str]:
    return [str(a) for a in json.loads(arguments)]


def test_dockerfile_is_multi_stage_and_runs_the_console_script_as_non_root() -> None:
    steps = _dockerfile()
    words = [word for word, _ in steps]
    assert words.count("FROM") >= 2
    entrypoint = words.index("ENTRYPOINT")
    users = [rest for word, rest in steps[:entrypoint] if word == "USER"]
    assert users, "no USER before ENTRYPOINT"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert words.index("FROM", 1) < words.index("USER")  # in the final stage
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert _exec_form(steps[entrypoint][1]) == ["webhook-worker"]
    assert "webhook-worker" in scripts
    cmd = [rest for word, rest in steps if word == "CMD"][-1]
    build_parser().parse_args(_exec_form(cmd))


def test_dockerfile_healthcheck_and_expose_match_the_metrics_port() -> None:
    steps = _dockerfile()
    port = str(Settings().metrics_port)
    exposed = [p.split("/")[0] for word, rest in steps if word == "EXPOSE" for p in rest.split()]
    assert exposed == [port, str(Settings().api_port)]
    healthcheck = [rest for word, rest in steps if word == "HEALTHCHECK"]
    assert len(healthcheck) == 1
    assert "/healthz" in healthcheck[0] and port in healthcheck[0]


def test_dockerignore_keeps_the_context_small_without_hiding_what_the_build_copies() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        return any(
            fnmatch.fnmatch(path, p.rstrip("/")) or path.startswith(p.rstrip("/") + "/")
            for p in patterns
        )

    for path in (".venv", ".git", ".pytest_cache", ".mypy_cache", "bench/results.json"):
        assert ignored(path), f"{path} is sent to the Docker daemon"
    copied = [
        source
        for word, rest in _dockerfile()
        if word == "COPY" and "--from" not in rest
        for source in rest.split()[:-1]
    ]
    assert {"pyproject.toml", "README.md", "worker", "schemas"} <= set(copied)
    for source in copied:
        assert not ignored(source), f".dockerignore hides {source}, which the Dockerfile copies"
