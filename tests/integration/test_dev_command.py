"""`webhook-worker dev`: embedded broker, demo receiver, demo subscription, deliveries."""

from __future__ import annotations

import os
import subprocess
import sys

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
