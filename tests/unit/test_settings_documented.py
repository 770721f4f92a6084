"""docs/configuration.md and the code agree: every variable ``worker/config.py`` reads is in
the table, and every variable in the table is read."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from worker import config

REPO = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"^(WEBHOOK|KAFKA)_[A-Z0-9_]+$")


def read_by_the_code() -> set[str]:
    tree = ast.parse(Path(config.__file__).read_text())
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and VARIABLE.match(node.value)
    }


def documented() -> set[str]:
    names: set[str] = set()
    for line in (REPO / "docs" / "configuration.md").read_text().splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z0-9_<>]+)`", first_cell))
    return names


def test_every_setting_is_documented_and_every_documented_one_exists() -> None:
    code, docs = read_by_the_code(), documented()
    assert len(code) > 30  # the scan finds the settings at all
    assert sorted(code - docs) == [], "read by worker/config.py, missing in the docs"
    assert sorted(docs - code - {"KAFKA_<PROPERTY>"}) == [], "documented, not read"


def test_the_readme_points_to_the_configuration() -> None:
    assert "docs/configuration.md" in (REPO / "README.md").read_text()
