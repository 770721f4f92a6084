"""``event-types list`` as a subprocess: no broker is involved."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from tests.support.worker import REPO
from worker.catalogue import example_catalogue_path


def run(*args: str, catalogue: str | None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEBHOOK_", "KAFKA_"))}
    if catalogue is not None:
        env["WEBHOOK_EVENT_TYPES"] = catalogue
    return subprocess.run(
        [sys.executable, "-m", "worker", "event-types", "list", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        timeout=60,
    )


def test_json_lists_every_type_with_schema_and_example() -> None:
    result = run("--output", "json", catalogue=str(example_catalogue_path()))
    assert result.returncode == 0, result.stderr.decode()
    listed = orjson.loads(result.stdout)
    assert len(listed) >= 40
    first = listed[0]
    assert set(first) == {"name", "category", "description", "schema", "example"}
    assert first["example"]["event"] == first["name"]


def test_category_filter_and_aligned_text() -> None:
    result = run("--category", "deal", catalogue=str(example_catalogue_path()))
    assert result.returncode == 0, result.stderr.decode()
    header, *lines = result.stdout.decode().splitlines()
    assert header.split() == ["NAME", "CATEGORY", "DESCRIPTION"]
    assert lines and all(line.startswith("deal.") for line in lines)
    columns = {line.index("  deal  ") for line in lines}
    assert len(columns) == 1  # the category column is aligned
    assert any(line.startswith("deal.stage_changed ") for line in lines)


def test_unknown_category_is_one_line() -> None:
    result = run("--category", "nope", catalogue=str(example_catalogue_path()))
    assert result.returncode == 1
    err = result.stderr.decode()
    assert err.startswith("webhook-worker: error: no category 'nope'; the categories are ")
    assert len(err.strip().splitlines()) == 1


def test_without_a_catalogue() -> None:
    json_result = run("--output", "json", catalogue=None)
    assert json_result.returncode == 0 and orjson.loads(json_result.stdout) == []
    text = run(catalogue=None)
    assert text.returncode == 0
    assert text.stdout.decode() == ("no event-type catalogue is configured (WEBHOOK_EVENT_TYPES)\n")


def test_a_bad_catalogue_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "types.json"
    path.write_text('{"event_types": [{"name": "a"}]}')
    result = run(catalogue=str(path))
    assert result.returncode == 2
    err = result.stderr.decode()
    assert err == (
        f"webhook-worker: error: event types {path}: event_types[0] ('a'): "
        "missing category, description, schema, example\n"
    )
