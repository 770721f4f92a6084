"""kill -9 of the API between receiving a request and acknowledging it: the sender retries
(same webhook-id, signed again, as Standard Webhooks senders do) against a restarted API, and
exactly one record lands, whether the process died after its claim or after its record."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.cli import cli_json
from tests.support.incoming import landed, post, raw_body, signed_headers
from tests.support.kafka import consume_all
from tests.support.wait import wait_for
from tests.support.worker import REPO, settings_env, wait_ready
from worker.codec.avro import AvroCodec
from worker.config import Settings
from worker.kafka.topics import Topics


class ProcessApi:
    """``python -m worker api`` as a child process on a free port."""

    def __init__(self, settings: Settings, data_dir: Path, pause: str | None = None) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        env = settings_env(settings)
        env.update(WEBHOOK_API_PORT=str(self.port), WEBHOOK_API_DATA_DIR=str(data_dir))
        if pause:
            env["WEBHOOK_INCOMING_TEST_PAUSE"] = pause
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "worker", "api"],
            env=env,
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        wait_ready(self.port, 60, lambda: self.proc.poll() is not None and self.output())

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-3000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def _marks(settings: Settings) -> list[tuple[str, str]]:
    avro = AvroCodec()
    topic = Topics.from_settings(settings).incoming_dedupe
    out = []
    for record in consume_all(settings.bootstrap_servers or "", topic):
        mark = avro.decode_as("IncomingMark", record.value)
        out.append(((record.key or b"").decode(), mark["state"]))
    return out


@pytest.mark.timeout(180)
@pytest.mark.parametrize("pause", ["claimed", "recorded"])
def test_kill_9_before_the_answer_then_a_retry_lands_exactly_once(
    settings_factory: Callable[..., Settings], tmp_path: Path, pause: str
) -> None:
    settings = settings_factory()
    topic = f"in-{settings.topic_prefix}crash"
    source = cli_json(
        settings, "sources", "create", "--workspace", "acme", "--name", "crm", "--topic", topic
    )
    secret, path = source["secret"], source["path"]
    body = b'{"event": "deal.won", "amount": 1200}'
    first = signed_headers(secret, body)
    webhook_id = first["webhook-id"]
    key = f"{source['id']} {webhook_id}"
    bootstrap = settings.bootstrap_servers or ""

    doomed = ProcessApi(settings, tmp_path / "a", pause)
    outcome: list[object] = []
    try:
        doomed.wait_ready()
        sender = threading.Thread(
            target=lambda: outcome.append(_try_post(doomed.url + path, body, first)),
            daemon=True,
        )
        sender.start()
        # Wait until the request is held exactly where the process is to die.
        if pause == "claimed":
            assert wait_for(lambda: (key, "claimed") in _marks(settings), 30, 0.2)
        else:
            assert wait_for(lambda: len(landed(bootstrap, topic)) == 1, 30, 0.2)
        doomed.proc.kill()
        doomed.proc.wait(10)
        sender.join(30)
        # The sender got no answer: for it the delivery failed, so it will retry.
        assert outcome and isinstance(outcome[0], httpx.HTTPError), outcome
    finally:
        doomed.close()

    restarted = ProcessApi(settings, tmp_path / "b")
    try:
        restarted.wait_ready()
        retry = _sender_retries(restarted.url + path, body, secret, webhook_id)
        assert retry.status_code == 200, (retry.text, restarted.output())
        assert retry.json()["webhook_id"] == webhook_id
        again = post(restarted.url, path, body, signed_headers(secret, body, webhook_id=webhook_id))
        assert again.status_code == 200 and again.json()["duplicate"] is True
    finally:
        restarted.close()

    records = landed(bootstrap, topic)
    assert len(records) == 1, records
    assert records[0]["webhook_id"] == webhook_id and raw_body(records[0]) == body
    assert (key, "landed") in _marks(settings)


def _sender_retries(url: str, body: bytes, secret: str, webhook_id: str) -> httpx.Response:
    """A sender's retries: signed again each time, honouring 503 + Retry-After."""
    deadline = time.monotonic() + 90
    while True:
        headers = signed_headers(secret, body, webhook_id=webhook_id)
        response = httpx.post(url, content=body, headers=headers, timeout=60)
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(int(response.headers["retry-after"]))


def _try_post(url: str, body: bytes, headers: dict[str, str]) -> object:
    try:
        return httpx.post(url, content=body, headers=headers, timeout=60)
    except httpx.HTTPError as exc:
        return exc
