"""`webhook-worker dev`: embedded broker, demo receiver, demo subscription, deliveries."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import orjson

from tests.support.worker import REPO


def test_dev_runs_the_demo_end_to_end():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "WEBHOOK_"))}
    env["WEBHOOK_METRICS_PORT"] = "0"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "worker",
            "dev",
            "--events",
            "8",
            "--exit-after",
            "8",
            "--output",
            "json",
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    lines = [orjson.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    deliveries = [line for line in lines if "delivery" in line]
    assert len(deliveries) >= 8
    assert all(d["signature"] == "verified" for d in deliveries)
    assert len({d["webhook_id"] for d in deliveries}) >= 8


def test_ctrl_c_drains_the_worker_then_stops_the_broker():
    """A terminal's Ctrl-C sends SIGINT to the whole process group. The broker runs in its own
    session, so it is not interrupted under the draining worker (whose consumers would then
    wait for it at close): dev exits 0 and then stops the broker itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "WEBHOOK_"))}
    env["WEBHOOK_METRICS_PORT"] = "0"
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", "dev", "--events", "4"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    lines: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        broker_port = None
        api = token = None
        deliveries = 0
        deadline = time.monotonic() + 90
        portal = None
        while deliveries < 4 or api is None or portal is None:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic())).decode()
            if line.startswith("broker: "):
                broker_port = int(line.rsplit(":", 1)[1])
            if line.startswith("management API: "):
                api = line.split()[2]
                token = line.rsplit(" ", 1)[1].rstrip(")\n")
            if line.startswith("portal "):
                portal = line.rsplit(" ", 1)[1].strip()
            deliveries += line.startswith("delivery=")
        assert broker_port is not None
        assert portal.startswith(f"{api}/portal/#")
        # dev runs the management API too, with a token of the demo workspace.
        listing = httpx.get(
            f"{api}/v1/workspaces/demo/subscriptions",
            headers={"authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert listing.status_code == 200, listing.text
        assert [s["name"] for s in listing.json()["data"]] == ["demo receiver"]
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", broker_port)) != 0, "the broker was stopped"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
