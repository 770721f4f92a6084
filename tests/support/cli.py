"""Running the real ``webhook-worker`` command line from tests, against one test's settings."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import orjson

from tests.support.worker import REPO, settings_env
from worker.config import Settings


def run_cli(
    settings: Settings, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    full = settings_env(settings)
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        env=full,
        cwd=REPO,
        capture_output=True,
        timeout=60,
    )


def cli_json(settings: Settings, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run with ``--output json``; assert success; the parsed document."""
    result = run_cli(settings, *args, "--output", "json", env=env)
    assert result.returncode == 0, result.stderr.decode()
    return orjson.loads(result.stdout)


def cli_error(settings: Settings, *args: str, env: dict[str, str] | None = None) -> str:
    """Run; assert a non-zero exit with exactly one line on stderr; that line."""
    result = run_cli(settings, *args, env=env)
    assert result.returncode != 0, args
    err = result.stderr.decode().strip()
    assert len(err.splitlines()) == 1, err
    return err
