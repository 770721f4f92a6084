"""A secured cluster (SASL_SSL with SCRAM-SHA-512, a broker certificate from a private CA):
the CLI, the API and the worker connect with only ``KAFKA_*`` settings and a signed delivery
arrives;
with a wrong password the CLI and the worker fail within seconds in one line naming the
cause, instead of retrying silently until a timeout."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from tests.support.cli import cli_json, run_cli
from tests.support.receiver import Receiver
from tests.support.worker import REPO, ProcessWorker, settings_env, wait_ready
from worker.config import Settings
from worker.kafka.kafkabroker import KafkaCluster, TlsFiles
from worker.kafka.processes import free_port
from worker.subscriptions.secrets import generate_secret

USER, PASSWORD = "alice", "alice-secret"


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The broker's key and certificate (issued by a throwaway CA) and the CA clients trust."""
    directory = tmp_path_factory.mktemp("kafka-tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_pem.write_to_path(str(directory / "key.pem"))
    chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
    (directory / "chain.pem").write_bytes(chain)
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    return directory


@pytest.fixture(scope="module")
def secured(tls_dir: Path) -> Iterator[KafkaCluster]:
    tls = TlsFiles(cert_chain=tls_dir / "chain.pem", private_key=tls_dir / "key.pem")
    with KafkaCluster(nodes=1, scram_users={USER: PASSWORD}, tls=tls) as cluster:
        yield cluster


def secured_settings(
    cluster: KafkaCluster, tls_dir: Path, tmp_path: Path, password: str = PASSWORD
) -> Settings:
    """Settings built from the variables a user sets for a secured cluster, nothing else."""
    prefix = f"s{uuid.uuid4().hex[:8]}."
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": cluster.sasl_bootstrap,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": USER,
        "KAFKA_SASL_PASSWORD": password,
        "KAFKA_SSL_CA_LOCATION": str(tls_dir / "ca.pem"),
        "WEBHOOK_TOPIC_PREFIX": prefix,
        "WEBHOOK_INPUT_TOPICS": f"{prefix}events",
        "WEBHOOK_GROUP_ID": f"{prefix}group",
        "WEBHOOK_ALLOW_HTTP": "true",
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        "WEBHOOK_RETRY_DELAYS": "200ms",
        "WEBHOOK_CHALLENGE_CACHE": str(tmp_path / "challenges.json"),
    }
    return Settings.from_env(env)


def api_lists(settings: Settings, tmp_path: Path, token: str) -> list[dict[str, Any]]:
    """Run ``webhook-worker api`` with the same variables; the workspace's subscriptions as
    its ``GET`` lists them once it is ready (its indexes read the secured topics)."""
    port = free_port()
    env = settings_env(settings)
    env.update(WEBHOOK_API_PORT=str(port), WEBHOOK_API_DATA_DIR=str(tmp_path / "api"))
    with open(tmp_path / "api.log", "wb") as log:
        api = subprocess.Popen(
            [sys.executable, "-m", "worker", "api"], env=env, cwd=REPO, stdout=log, stderr=log
        )
    try:
        wait_ready(port, 90, lambda: api.poll() is not None and (tmp_path / "api.log").read_text())
        headers = {"authorization": f"Bearer {token}"}
        url = f"http://127.0.0.1:{port}/v1/workspaces/acme/subscriptions"
        response = httpx.get(url, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data
    finally:
        api.terminate()
        api.wait(30)


@pytest.mark.timeout(240)
def test_cli_api_and_worker_deliver_through_sasl_ssl(secured, tls_dir, tmp_path):
    settings = secured_settings(secured, tls_dir, tmp_path)
    assert settings.bootstrap_servers == secured.sasl_bootstrap != secured.bootstrap
    ensured = cli_json(settings, "topics", "ensure", "--partitions", "2")
    assert f"{settings.topic_prefix}subscriptions" in ensured["created"], ensured
    with Receiver() as receiver:
        secret = generate_secret()
        url = receiver.endpoint("secured", secret)
        sub = cli_json(
            settings,
            "subs", "create", "--workspace", "acme", "--url", url, "--events", "contact.*",
            "--secret", secret, "--skip-challenge",
        )  # fmt: skip
        token = cli_json(settings, "tokens", "create", "--workspace", "acme")["token"]
        worker = ProcessWorker(settings, free_port())
        try:
            listed = api_lists(settings, tmp_path, token)
            assert [s["id"] for s in listed] == [sub["id"]], listed
            worker.wait_ready(90)
            emitted = cli_json(
                settings,
                "events", "emit", "--workspace", "acme", "--event", "contact.created",
                "--count", "3",
            )  # fmt: skip
            got = receiver.wait_for("secured", 3, timeout=60)
        finally:
            worker.close()
    assert emitted, emitted
    assert all(r.verified for r in got), [r.error for r in got]
    assert {r.headers["webhook-id"] for r in got} and len({r.json["id"] for r in got}) == 3
    assert all(r.json["workspace"] == "acme" for r in got)
    print(f"\nSASL_SSL: subscription {sub['id']}, 3 signed deliveries verified")


@pytest.mark.timeout(180)
def test_a_wrong_password_fails_fast_in_one_line_naming_the_cause(secured, tls_dir, tmp_path):
    settings = secured_settings(secured, tls_dir, tmp_path, password="not-the-password")
    for args in (("subs", "list"), ("events", "emit", "--workspace", "acme", "--event", "x.y")):
        started = time.monotonic()
        result = run_cli(settings, *args)
        took = time.monotonic() - started
        err = result.stderr.decode().strip()
        assert result.returncode != 0, args
        assert len(err.splitlines()) == 1, err
        assert "authentication failed" in err, err
        # Python's start-up alone takes seconds on a loaded machine; the wait is ~0.4 s.
        assert took < 20, f"{args}: failed after {took:.1f}s"
        print(f"\n{' '.join(args)}: exit {result.returncode} after {took:.1f}s: {err}")

    # The worker too: it exits (as when the cluster does not answer at start), in one line.
    started = time.monotonic()
    worker = ProcessWorker(settings, free_port())
    try:
        status = worker.proc.wait(60)
        took = time.monotonic() - started
        output = worker.output().strip()
    finally:
        worker.close()
    assert status != 0, output
    assert len(output.splitlines()) == 1, output
    assert "broker authentication failed" in output, output
    assert took < 20, f"the worker exited after {took:.1f}s"
    print(f"run: exit {status} after {took:.1f}s: {output}")


@pytest.mark.timeout(60)
def test_an_untrusted_broker_certificate_is_named_in_one_line(secured, tls_dir, tmp_path):
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    settings = secured_settings(secured, tls_dir, tmp_path)
    result = run_cli(settings, "subs", "list", env={"KAFKA_SSL_CA_LOCATION": str(other)})
    err = result.stderr.decode().strip()
    assert result.returncode != 0
    assert len(err.splitlines()) == 1, err
    assert "TLS with the broker failed" in err and "certificate verify failed" in err, err
