"""A full run scanned for secrets: no log line, metric, attempts record, dead letter or CLI
output (beyond create/roll-secret, which show the secret once) contains any secret, and the
subscriptions topic holds none in plaintext."""

from __future__ import annotations

import httpx

from tests.support.cli import cli_json, run_cli
from tests.support.kafka import consume_all, produce_json
from tests.support.receiver import Receiver, always, fail_first
from tests.support.worker import ProcessWorker
from worker.kafka.processes import free_port
from worker.subscriptions.secrets import SecretBox, generate_secret


def needles(secret: str) -> list[bytes]:
    raw = secret.removeprefix("whsec_")
    return [secret.encode(), raw.encode(), raw[:16].encode()]


def test_no_secret_anywhere(settings_factory):
    key = SecretBox.generate_key()
    settings = settings_factory(secrets_key=key)
    secrets: list[str] = []
    outputs: list[bytes] = []
    with Receiver() as receiver:
        ids = []
        for name, behaviour in (("ok", None), ("retry", fail_first(1)), ("bad", always(400))):
            secret = generate_secret()
            secrets.append(secret)
            url = receiver.endpoint(name, secret, behaviour)
            ids.append(
                cli_json(
                    settings,
                    "subs",
                    "create",
                    "--workspace",
                    "acme",
                    "--url",
                    url,
                    "--events",
                    "*",
                    "--secret",
                    secret,
                    "--skip-challenge",
                )["id"]
            )
        rolled = cli_json(settings, "subs", "roll-secret", ids[0], "--grace", "1h")
        secrets.append(rolled["secret"])
        for args in (["subs", "list"], ["subs", "show", ids[0]], ["subs", "show", ids[1]]):
            for output in ("json", "text"):
                result = run_cli(settings, *args, "--output", output)
                assert result.returncode == 0, result.stderr
                outputs += [result.stdout, result.stderr]
        worker = ProcessWorker(settings, free_port())
        try:
            worker.wait_ready()
            produce_json(
                settings.bootstrap_servers,
                settings.input_topics,
                [{"event": "a.created", "workspace": "acme", "id": f"s{i}"} for i in range(20)],
            )
            receiver.wait_for("ok", 20, timeout=60)
            receiver.wait_for("retry", 21, timeout=60)
            receiver.wait_for("bad", 20, timeout=60)
            outputs.append(httpx.get(f"http://127.0.0.1:{worker.port}/metrics").content)
            assert worker.terminate() == 0
            outputs.append(worker.output().encode())
        finally:
            worker.close()
    for topic in ("attempts", "dlq", "subscriptions", "deliveries", "parked"):
        outputs += [
            m.value or b""
            for m in consume_all(settings.bootstrap_servers, settings.topic_prefix + topic)
        ]
    blob = b"\n".join(outputs)
    assert len(blob) > 10_000  # the scan saw a real run
    hits = [secret for secret in secrets for needle in needles(secret) if needle in blob]
    assert hits == []
