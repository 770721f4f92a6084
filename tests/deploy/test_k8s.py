"""The Kubernetes manifests in ``deploy/k8s``, rendered with ``kubectl kustomize`` and checked
offline: core kinds against the Kubernetes schemas, the CRDs (ServiceMonitor, KEDA) by their
required structure, and everything against the worker itself: the variables
``Settings.from_env`` reads, the command line it parses, its port, groups and topics.

No cluster and no broker: ``kubectl`` is only used to render.
"""

from __future__ import annotations

import base64
import copy
import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import confluent_kafka
import kubernetes_validate
import pytest
import yaml

from worker.cli.main import build_parser
from worker.config import Settings
from worker.kafka.topics import Topics
from worker.subscriptions.secrets import SecretBox

pytestmark = pytest.mark.timeout(60)

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"
# Kinds from CRDs: not in the Kubernetes schemas, checked by hand below.
CRD_KINDS = {"ServiceMonitor", "ScaledObject", "TriggerAuthentication"}
CLUSTER_SCOPED = {"Namespace"}
ROUTER = "webhook-worker-router"
DISPATCHER = "webhook-worker-dispatcher"
API = "webhook-worker-api"
API_METRICS = "webhook-worker-api-metrics"
WORKER_METRICS = "webhook-worker-metrics"
# worker/api/server.py: after the server stops, the producer is flushed for up to 10 s.
API_FLUSH_S = 10
ALERTS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
# The worker's consumer groups are "<WEBHOOK_GROUP_ID>-router" and "-dispatcher" (app.py,
# docs/configuration.md).
DISPATCHER_GROUP_SUFFIX = "-dispatcher"
BASE, EXAMPLE, HPA = "base", "overlays/example", "base+components/hpa"
TARGETS = (BASE, EXAMPLE, HPA)

Doc = dict[str, Any]


# -- rendering -------------------------------------------------------------------------------


def render(target: str) -> list[Doc]:
    """The documents ``kubectl kustomize`` renders for ``target`` (a fresh copy each call)."""
    if shutil.which("kubectl") is None:
        message = (
            "kubectl is not on PATH: these tests render deploy/k8s with `kubectl kustomize` "
            "(kubectl 1.27 or newer, which bundles kustomize; no registry this project may use "
            "ships it). Install kubectl."
        )
        # CI (which has kubectl) must run them; a developer's machine without it may not.
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return copy.deepcopy(_render(target))


@functools.cache
def _render(target: str) -> list[Doc]:
    if target != HPA:
        return _kustomize(K8S / target)
    # The HPA component is not in any shipped overlay: render base + component the way an
    # operator's overlay would (kustomize wants relative paths).
    with tempfile.TemporaryDirectory() as tmp:
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(K8S / "base", tmp)],
            "components": [os.path.relpath(K8S / "components" / "hpa", tmp)],
        }
        (Path(tmp) / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        return _kustomize(Path(tmp))


def _kustomize(path: Path) -> list[Doc]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(path)], capture_output=True, text=True, timeout=30
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {path} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def kustomization(target: str) -> Doc:
    loaded: Doc = yaml.safe_load((K8S / target / "kustomization.yaml").read_text())
    return loaded


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def workloads(docs: list[Doc]) -> Iterator[tuple[Doc, Doc]]:
    """(workload, its pod spec) for every Deployment and Job."""
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            yield doc, doc["spec"]["template"]["spec"]


def containers(docs: list[Doc]) -> Iterator[tuple[Doc, Doc, Doc]]:
    for workload, pod in workloads(docs):
        for container in pod.get("initContainers", []) + pod["containers"]:
            yield workload, pod, container


def only_container(docs: list[Doc], kind: str, name: str) -> Doc:
    pod = named(docs, kind, name)["spec"]["template"]["spec"]
    assert len(pod["containers"]) == 1
    container: Doc = pod["containers"][0]
    return container


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def identity(doc: Doc) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def pod_labels(docs: list[Doc], kind: str, name: str) -> dict[str, str]:
    labels: dict[str, str] = named(docs, kind, name)["spec"]["template"]["metadata"]["labels"]
    return labels


# -- the environment a container gets --------------------------------------------------------


def secret_values(secret: Doc) -> dict[str, str]:
    values = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
    values.update(secret.get("stringData", {}))
    return values


def container_env(docs: list[Doc], container: Doc) -> dict[str, str]:
    """The environment ``container`` starts with; fails if a referenced ConfigMap, Secret or
    key does not exist in the render."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(named(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
        elif "secretRef" in source:
            env.update(secret_values(named(docs, "Secret", source["secretRef"]["name"])))
        else:
            pytest.fail(f"unexpected envFrom source {source}")
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
            continue
        ref = var["valueFrom"]
        if "secretKeyRef" in ref:
            values = secret_values(named(docs, "Secret", ref["secretKeyRef"]["name"]))
            key = ref["secretKeyRef"]["key"]
        else:
            values = named(docs, "ConfigMap", ref["configMapKeyRef"]["name"])["data"]
            key = ref["configMapKeyRef"]["key"]
        assert key in values, f"{var['name']} refers to a missing key {key!r}"
        env[var["name"]] = values[key]
    return env


def settings_of(docs: list[Doc], container: Doc) -> Settings:
    return Settings.from_env(container_env(docs, container))


class RecordingEnv(Mapping[str, str]):
    """An environment that remembers every name it was asked for by name. ``items()`` (the
    ``KAFKA_<PROPERTY>`` scan) does not count as asking."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return self._values[key]

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return key in self._values

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return self._values.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def items(self) -> Any:
        return self._values.items()


@functools.cache
def names_settings_read() -> frozenset[str]:
    """Every variable ``Settings.from_env`` looks up by name."""
    env = RecordingEnv({})
    Settings.from_env(env)
    return frozenset(env.asked)


def assert_librdkafka_accepts(properties: Mapping[str, str]) -> None:
    """librdkafka refuses unknown properties when a client is created (no broker needed)."""
    try:
        confluent_kafka.Producer({**properties, "log_level": 0})
    except confluent_kafka.KafkaException as exc:
        pytest.fail(f"librdkafka refuses {dict(properties)}: {exc}")


# -- schemas and structure ---------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_core_resources_match_the_kubernetes_schemas(target: str) -> None:
    docs = render(target)
    core = [doc for doc in docs if doc["kind"] not in CRD_KINDS]
    assert {"Deployment", "Job", "ConfigMap", "Secret", "Service", "PodDisruptionBudget"} <= {
        doc["kind"] for doc in core
    }
    for doc in core:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']}: {exc.message} at {exc.path}")


def test_the_schema_check_rejects_a_bad_deployment() -> None:
    """The validation above is not vacuous: an unknown field and a wrong type are caught."""
    deployment = named(render(BASE), "Deployment", DISPATCHER)
    misspelt = copy.deepcopy(deployment)
    misspelt["spec"]["template"]["spec"]["terminationGracePeriod"] = 75
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "x"
    for bad in (misspelt, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


def test_base_holds_the_expected_objects_and_no_namespace() -> None:
    docs = render(BASE)
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in docs}
    for expected in [
        ("Deployment", ROUTER),
        ("Deployment", DISPATCHER),
        ("Job", "webhook-worker-topics"),
        ("Secret", "webhook-worker-secrets"),
        ("Service", WORKER_METRICS),
        ("ServiceMonitor", "webhook-worker"),
        ("PodDisruptionBudget", DISPATCHER),
        ("Deployment", API),
        ("Service", API),
        ("Service", API_METRICS),
        ("PodDisruptionBudget", API),
        ("ScaledObject", DISPATCHER),
        ("TriggerAuthentication", "webhook-worker-kafka"),
    ]:
        assert expected in kinds
    assert len(of_kind(docs, "ConfigMap")) == 1
    assert not of_kind(docs, "HorizontalPodAutoscaler"), "the HPA is optional, not in the base"
    assert all("namespace" not in doc["metadata"] for doc in docs)


# -- the pods ------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [BASE, EXAMPLE])
def test_worker_commands_parse_with_the_real_command_line(target: str) -> None:
    docs = render(target)
    parser = build_parser()
    for name, role in ((ROUTER, "router"), (DISPATCHER, "dispatcher")):
        container = only_container(docs, "Deployment", name)
        assert "command" not in container, "the image's entrypoint is webhook-worker"
        args = parser.parse_args(container["args"])
        assert (args.command, args.role) == ("run", role)
        assert pod_labels(docs, "Deployment", name)["app.kubernetes.io/component"] == role
    api = only_container(docs, "Deployment", API)
    assert "command" not in api
    assert build_parser().parse_args(api["args"]).command == "api"
    assert pod_labels(docs, "Deployment", API)["app.kubernetes.io/component"] == "api"
    job = only_container(docs, "Job", "webhook-worker-topics")
    assert "command" not in job
    assert job["args"][:2] == ["topics", "ensure"]
    args = parser.parse_args(job["args"])
    assert (args.command, args.action) == ("topics", "ensure")
    assert args.partitions >= 1
    # Every topic, the job's and those the API creates for sources, gets the same copies.
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    factor = args.replication_factor or int(config["WEBHOOK_REPLICATION_FACTOR"])
    assert factor >= 3


@pytest.mark.parametrize("target", TARGETS)
def test_every_variable_set_is_one_the_worker_reads(target: str) -> None:
    docs = render(target)
    read = names_settings_read()
    # The recording works: it saw both kinds of lookups the worker makes.
    assert {"KAFKA_BOOTSTRAP_SERVERS", "WEBHOOK_SHUTDOWN_TIMEOUT", "WEBHOOK_ALLOW_HTTP"} <= read
    for workload, _pod, container in containers(docs):
        env = container_env(docs, container)
        assert env, f"{workload['metadata']['name']} gets no settings"
        unknown = {n for n in env if n not in read and not n.startswith("KAFKA_")}
        assert not unknown, f"{workload['metadata']['name']}: Settings never reads {unknown}"
        settings = Settings.from_env(env)  # every value parses
        # KAFKA_<PROPERTY> names must become properties librdkafka knows.
        assert_librdkafka_accepts(settings.kafka_properties)
        assert settings.bootstrap_servers, "KAFKA_BOOTSTRAP_SERVERS is required outside `dev`"


def test_an_unknown_kafka_property_would_be_caught() -> None:
    with pytest.raises(pytest.fail.Exception):
        assert_librdkafka_accepts(
            Settings.from_env({"KAFKA_SASL_MECHANISMZ": "PLAIN"}).kafka_properties
        )


@pytest.mark.parametrize("target", [BASE, EXAMPLE])
def test_probes_use_the_metrics_port(target: str) -> None:
    docs = render(target)
    for name in (ROUTER, DISPATCHER):
        container = only_container(docs, "Deployment", name)
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        expected_port = settings_of(docs, container).metrics_port
        probes = {
            "livenessProbe": "/healthz",
            "readinessProbe": "/readyz",
            "startupProbe": "/readyz",
        }
        for probe, path in probes.items():
            get = container[probe]["httpGet"]
            assert get["path"] == path, f"{name} {probe}"
            port = ports[get["port"]] if isinstance(get["port"], str) else get["port"]
            assert port == expected_port, f"{name} {probe} probes {port}"


@pytest.mark.parametrize("target", [BASE, EXAMPLE])
def test_pods_are_locked_down_and_sized(target: str) -> None:
    docs = render(target)
    for workload, pod, container in containers(docs):
        where = f"{workload['metadata']['name']}/{container['name']}"
        pod_context = pod.get("securityContext", {})
        context = container.get("securityContext", {})
        assert context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is True, where
        assert context.get("readOnlyRootFilesystem") is True, where
        assert context.get("allowPrivilegeEscalation") is False, where
        assert context.get("capabilities", {}).get("drop") == ["ALL"], where
        # The "restricted" Pod Security Standard the example namespace enforces wants it too.
        seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {}))
        assert seccomp.get("type") == "RuntimeDefault", where
        assert pod["automountServiceAccountToken"] is False, where
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"].get(bound, {})), where


@pytest.mark.parametrize("target", [BASE, EXAMPLE])
def test_grace_period_outlasts_the_shutdown_drain(target: str) -> None:
    """SIGTERM waits WEBHOOK_SHUTDOWN_TIMEOUT for in-flight work, then flushes the producer
    with the same deadline, then commits and closes: the kubelet must not kill it earlier."""
    docs = render(target)
    for name in (ROUTER, DISPATCHER):
        deployment = named(docs, "Deployment", name)
        grace_ms = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] * 1000
        container = only_container(docs, "Deployment", name)
        shutdown_ms = settings_of(docs, container).shutdown_timeout_ms
        assert "WEBHOOK_SHUTDOWN_TIMEOUT" in container_env(docs, container)
        assert grace_ms > 2 * shutdown_ms, f"{name}: {grace_ms} ms <= 2 x {shutdown_ms} ms"


def container_port(container: Doc, port: int | str) -> int:
    """A probe's or Service's target port, by name or number, as the container's number."""
    if isinstance(port, int):
        return port
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port in ports, f"no container port named {port}"
    return int(ports[port])


@pytest.mark.parametrize("target", [BASE, EXAMPLE])
def test_api_probes_and_serves_on_its_port(target: str) -> None:
    """`webhook-worker api` serves /v1, /healthz, /readyz and /metrics on WEBHOOK_API_PORT."""
    docs = render(target)
    container = only_container(docs, "Deployment", API)
    settings = settings_of(docs, container)
    assert settings.api_port == 8088
    (port,) = container["ports"]
    assert port["containerPort"] == settings.api_port
    probes = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"}
    for probe, path in probes.items():
        get = container[probe]["httpGet"]
        assert get["path"] == path, probe
        assert container_port(container, get["port"]) == settings.api_port, probe
    assert named(docs, "Deployment", API)["spec"]["replicas"] >= 2


@pytest.mark.parametrize("target", [BASE, EXAMPLE])
def test_api_index_lives_on_an_empty_dir(target: str) -> None:
    """The read-only root filesystem leaves the API one writable place for its SQLite index:
    an emptyDir at WEBHOOK_API_DATA_DIR (rebuilt from the topics when a pod starts)."""
    docs = render(target)
    pod = named(docs, "Deployment", API)["spec"]["template"]["spec"]
    container = only_container(docs, "Deployment", API)
    data_dir = settings_of(docs, container).api_data_dir
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert data_dir in mounts, f"nothing is mounted at WEBHOOK_API_DATA_DIR={data_dir}"
    assert "/tmp" in mounts  # SQLite's temporary files
    volumes = {v["name"]: v for v in pod["volumes"]}
    for path in (data_dir, "/tmp"):
        assert "emptyDir" in volumes[mounts[path]], path
        assert volumes[mounts[path]]["emptyDir"].get("sizeLimit"), path


@pytest.mark.parametrize("target", [BASE, EXAMPLE])
def test_api_reads_the_same_cluster_and_secrets_as_the_worker(target: str) -> None:
    """Same ConfigMap and Secret: the API must open the subscription secrets the worker
    sealed (WEBHOOK_SECRETS_KEY) and read the same topics."""
    docs = render(target)
    api = container_env(docs, only_container(docs, "Deployment", API))
    worker = container_env(docs, only_container(docs, "Deployment", DISPATCHER))
    assert "WEBHOOK_SECRETS_KEY" in api
    differing = {k for k in worker if api.get(k) != worker[k]}
    assert not differing, f"the API's settings differ from the worker's: {differing}"
    assert (
        only_container(docs, "Deployment", API)["envFrom"]
        == (only_container(docs, "Deployment", DISPATCHER)["envFrom"])
    )


@pytest.mark.parametrize("target", [BASE, EXAMPLE])
def test_api_shutdown_fits_the_grace_period(target: str) -> None:
    docs = render(target)
    pod = named(docs, "Deployment", API)["spec"]["template"]["spec"]
    container = only_container(docs, "Deployment", API)
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > int(pre_stop[1]) + API_FLUSH_S


def test_the_shipped_secrets_key_is_a_placeholder_the_worker_refuses() -> None:
    """No usable key is committed: a worker started with the placeholder fails at once."""
    secret = named(render(BASE), "Secret", "webhook-worker-secrets")
    with pytest.raises(ValueError, match="WEBHOOK_SECRETS_KEY"):
        SecretBox(secret_values(secret)["WEBHOOK_SECRETS_KEY"])


# -- service, monitoring, disruption budgets ----------------------------------------------------


@pytest.mark.parametrize("target", [BASE, EXAMPLE])
def test_metrics_service_selects_the_worker_pods(target: str) -> None:
    docs = render(target)
    service = named(docs, "Service", WORKER_METRICS)
    selector = service["spec"]["selector"]
    for name in (ROUTER, DISPATCHER):
        assert selects(selector, pod_labels(docs, "Deployment", name)), name
        container = only_container(docs, "Deployment", name)
        port_names = {port["name"] for port in container["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names
            assert port["port"] == settings_of(docs, container).metrics_port
    assert not selects(selector, pod_labels(docs, "Job", "webhook-worker-topics"))
    assert not selects(selector, pod_labels(docs, "Deployment", API))

    monitor = named(docs, "ServiceMonitor", "webhook-worker")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    service_ports = {port["name"] for port in service["spec"]["ports"]}
    assert monitor["spec"]["endpoints"]
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in service_ports
        assert endpoint["path"] == "/metrics"


@pytest.mark.parametrize("target", [BASE, EXAMPLE])
def test_api_services_select_the_api_pods_on_its_port(target: str) -> None:
    docs = render(target)
    api_pods = pod_labels(docs, "Deployment", API)
    container = only_container(docs, "Deployment", API)
    api_port = settings_of(docs, container).api_port
    for name in (API, API_METRICS):
        service = named(docs, "Service", name)
        selector = service["spec"]["selector"]
        assert selects(selector, api_pods), name
        for other in (ROUTER, DISPATCHER):
            assert not selects(selector, pod_labels(docs, "Deployment", other)), name
        assert not selects(selector, pod_labels(docs, "Job", "webhook-worker-topics")), name
        for port in service["spec"]["ports"]:
            assert container_port(container, port["targetPort"]) == api_port, name
    # Traffic only to ready replicas; scrapes also of those still building their index.
    assert not named(docs, "Service", API)["spec"].get("publishNotReadyAddresses", False)
    assert named(docs, "Service", API_METRICS)["spec"]["publishNotReadyAddresses"] is True


def matches_selector(selector: Doc, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels and the Exists/DoesNotExist/In/NotIn expressions)."""
    if not selects(selector.get("matchLabels", {}), labels):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        ok = {
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
        }[operator]
        if not ok:
            return False
    return True


def alert_jobs() -> set[str]:
    """The scrape jobs deploy/prometheus/alerts.yml selects on (job="...")."""
    doc = yaml.safe_load(ALERTS.read_text())
    exprs = " ".join(rule["expr"] for group in doc["groups"] for rule in group["rules"])
    return set(re.findall(r'job="([^"]+)"', exprs))


@pytest.mark.parametrize("target", [BASE, EXAMPLE])
def test_the_service_monitor_scrapes_each_process_under_the_job_the_alerts_use(
    target: str,
) -> None:
    """With jobLabel, the Prometheus Operator names the job after that label of the Service
    (else after the Service): the alerts' up{job=...} must see the pods it scrapes."""
    docs = render(target)
    monitor = named(docs, "ServiceMonitor", "webhook-worker")
    selector = monitor["spec"]["selector"]
    job_label = monitor["spec"].get("jobLabel")
    scraped = {
        doc["metadata"]["name"]: doc
        for doc in of_kind(docs, "Service")
        if matches_selector(selector, doc["metadata"].get("labels", {}))
    }
    assert set(scraped) == {WORKER_METRICS, API_METRICS}, "the API's traffic Service too?"
    jobs = {
        name: service["metadata"]["labels"].get(job_label, name) if job_label else name
        for name, service in scraped.items()
    }
    assert jobs == {WORKER_METRICS: "webhook-worker", API_METRICS: "webhook-worker-api"}
    assert set(jobs.values()) == alert_jobs()
    ports = {port["name"] for service in scraped.values() for port in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in ports


def test_the_label_selector_matcher() -> None:
    selector = {
        "matchLabels": {"a": "1"},
        "matchExpressions": [{"key": "b", "operator": "Exists"}],
    }
    assert matches_selector(selector, {"a": "1", "b": "x"})
    assert not matches_selector(selector, {"a": "1"})
    assert not matches_selector(selector, {"a": "2", "b": "x"})


@pytest.mark.parametrize("target", [BASE, EXAMPLE])
def test_disruption_budgets_select_their_own_pods(target: str) -> None:
    docs = render(target)
    names = (DISPATCHER, ROUTER, API)
    for name in names:
        selector = named(docs, "PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"]
        assert selects(selector, pod_labels(docs, "Deployment", name))
        for other in names:
            if other != name:
                assert not selects(selector, pod_labels(docs, "Deployment", other))
        deployment = named(docs, "Deployment", name)
        assert selects(selector, deployment["spec"]["selector"]["matchLabels"])


# -- autoscaling --------------------------------------------------------------------------------


# librdkafka sasl.mechanisms -> the KEDA kafka scaler's sasl parameter.
KEDA_SASL = {
    "PLAIN": "plaintext",
    "SCRAM-SHA-256": "scram_sha256",
    "SCRAM-SHA-512": "scram_sha512",
    "GSSAPI": "gssapi",
    "OAUTHBEARER": "oauthbearer",
}


def keda_auth_for(properties: Mapping[str, str]) -> dict[str, str]:
    """The KEDA kafka trigger's sasl/tls that match the worker's librdkafka properties."""
    protocol = properties.get("security.protocol", "plaintext").upper()
    expected = {"tls": "enable" if protocol in ("SSL", "SASL_SSL") else "disable"}
    if protocol.startswith("SASL"):
        mechanism = properties.get("sasl.mechanisms", properties.get("sasl.mechanism", "GSSAPI"))
        expected["sasl"] = KEDA_SASL[mechanism.upper()]
    else:
        expected["sasl"] = "none"
    return expected


def partitions(docs: list[Doc]) -> int:
    args = build_parser().parse_args(only_container(docs, "Job", "webhook-worker-topics")["args"])
    count: int = args.partitions
    return count


@pytest.mark.parametrize("target", [BASE, EXAMPLE])
def test_keda_scales_the_dispatcher_on_its_deliveries_lag(target: str) -> None:
    docs = render(target)
    settings = settings_of(docs, only_container(docs, "Deployment", DISPATCHER))
    scaled = named(docs, "ScaledObject", DISPATCHER)
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == DISPATCHER
    assert spec["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    assert "replicas" not in named(docs, "Deployment", DISPATCHER)["spec"], (
        "the autoscaler owns the dispatcher's replica count"
    )
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= partitions(docs)

    (trigger,) = spec["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    assert int(meta["lagThreshold"]) > 0
    assert meta["consumerGroup"] == settings.group_id + DISPATCHER_GROUP_SUFFIX
    assert meta["topic"] == Topics.from_settings(settings).deliveries
    assert meta["bootstrapServers"] == settings.bootstrap_servers
    assert meta["offsetResetPolicy"] == "earliest"  # as the worker's consumers
    expected_auth = keda_auth_for(settings.kafka_properties)
    assert {k: meta.get(k, "none" if k == "sasl" else "disable") for k in expected_auth} == (
        expected_auth
    )

    auth = named(docs, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    assert auth["apiVersion"] == "keda.sh/v1alpha1"
    refs = {ref["parameter"]: ref for ref in auth["spec"]["secretTargetRef"]}
    if expected_auth["sasl"] != "none":
        assert {"username", "password"} <= set(refs)
    env = container_env(docs, only_container(docs, "Deployment", DISPATCHER))
    for ref in refs.values():
        values = secret_values(named(docs, "Secret", ref["name"]))
        assert ref["key"] in values
    # KEDA logs in as the worker does.
    for parameter, variable in (
        ("username", "KAFKA_SASL_USERNAME"),
        ("password", "KAFKA_SASL_PASSWORD"),
    ):
        if parameter in refs:
            ref = refs[parameter]
            assert secret_values(named(docs, "Secret", ref["name"]))[ref["key"]] == env[variable]


def test_keda_auth_mapping() -> None:
    assert keda_auth_for({}) == {"tls": "disable", "sasl": "none"}
    assert keda_auth_for({"security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512"}) == {
        "tls": "enable",
        "sasl": "scram_sha512",
    }
    assert keda_auth_for({"security.protocol": "sasl_plaintext", "sasl.mechanisms": "PLAIN"}) == {
        "tls": "disable",
        "sasl": "plaintext",
    }


def test_hpa_component_replaces_keda() -> None:
    docs = render(HPA)
    assert not of_kind(docs, "ScaledObject")
    assert not of_kind(docs, "TriggerAuthentication")
    hpa = named(docs, "HorizontalPodAutoscaler", DISPATCHER)
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", DISPATCHER)
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= partitions(docs)
    assert hpa["spec"]["metrics"]
    # Everything else is the base, unchanged.
    keda = {"ScaledObject", "TriggerAuthentication"}
    rest = [doc for doc in docs if doc["kind"] != "HorizontalPodAutoscaler"]
    assert sorted(rest, key=identity) == sorted(
        (doc for doc in render(BASE) if doc["kind"] not in keda), key=identity
    )


# -- the example overlay --------------------------------------------------------------------------


def test_example_overlay_sets_namespace_image_replicas_and_one_setting() -> None:
    docs = render(EXAMPLE)
    config = kustomization(EXAMPLE)
    namespace = config["namespace"]
    assert named(docs, "Namespace", namespace)
    for doc in docs:
        if doc["kind"] not in CLUSTER_SCOPED:
            assert doc["metadata"].get("namespace") == namespace, doc["metadata"]["name"]

    (image,) = config["images"]
    for workload, _pod, container in containers(docs):
        assert container["image"] == f"{image['newName']}:{image['newTag']}", workload

    wanted = {entry["name"]: entry["count"] for entry in config["replicas"]}
    for name, count in wanted.items():
        assert named(docs, "Deployment", name)["spec"]["replicas"] == count
    base_docs = render(BASE)
    assert (
        named(docs, "Deployment", ROUTER)["spec"]["replicas"]
        != (named(base_docs, "Deployment", ROUTER)["spec"]["replicas"])
    )
    assert (
        named(docs, "ScaledObject", DISPATCHER)["spec"]["minReplicaCount"]
        != named(base_docs, "ScaledObject", DISPATCHER)["spec"]["minReplicaCount"]
    )

    (overlay_map,) = of_kind(docs, "ConfigMap")
    (base_map,) = of_kind(base_docs, "ConfigMap")
    changed = {
        key
        for key in overlay_map["data"].keys() | base_map["data"].keys()
        if overlay_map["data"].get(key) != base_map["data"].get(key)
    }
    assert changed == {"WEBHOOK_INPUT_TOPICS"}
    # A changed setting renames the generated ConfigMap, so the Deployments roll.
    assert overlay_map["metadata"]["name"] != base_map["metadata"]["name"]
    for name in (ROUTER, DISPATCHER):
        (source,) = only_container(docs, "Deployment", name)["envFrom"]
        assert source["configMapRef"]["name"] == overlay_map["metadata"]["name"]
