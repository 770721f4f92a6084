"""A mapping file that cannot work stops the start with one line naming the file, the
mapping and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.config import ConfigError, Settings
from worker.inputs import load_inputs


def load(tmp_path: Path, text: str, topics: str = "a,b,c", name: str = "inputs.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return load_inputs(Settings.from_env({}, inputs=str(path), input_topics=topics)), str(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("inputs:\n  - {name: x, topics: [a], format: debezum, workspace: 'const:w'}",
         "inputs[0] (x): format: unknown 'debezum' (choose from envelope, debezium"),
        ("inputs:\n  - {topics: [a], format: custom, event: 'field:a..b', workspace: 'const:w'}",
         "inputs[0]: event: bad path 'a..b'"),
        ("inputs:\n  - {topics: [a], format: custom, event: 'body:x', workspace: 'const:w'}",
         "inputs[0]: event: unknown source 'body:x'"),
        ("inputs:\n  - {topics: [a], format: envelope}\n  - {topics: [b, a], format: envelope}",
         "inputs[1]: topics: 'a' is also in inputs[0]"),
        ("inputs:\n  - {topics: '^a', format: envelope}\n  - {topics: [a], format: envelope}",
         "inputs[1]: topics: 'a' is also matched by inputs[0]"),
        ("inputs:\n  - {topics: [a], format: debezium}",
         "inputs[0]: workspace: required"),
        ("inputs:\n  - {topics: [a], format: debezium, workspace: 'const:w', snapshot: keep}",
         "inputs[0]: snapshot: expected created or skip, got 'keep'"),
        ("inputs:\n  - {topics: [a], format: envelope, colour: red}",
         "inputs[0]: colour: unknown key"),
        ("inputs:\n  - {topics: [z], format: envelope}",
         "inputs[0]: topics: 'z' is not an input topic"),
        ("inputs:\n  - {topics: '^(', format: envelope}",
         "inputs[0]: topics: bad regular expression"),
        ("inputs: [", "not valid JSON or YAML"),
        ("mappings: []", "expected {inputs: [mapping, ...]}"),
    ],
)  # fmt: skip
def test_a_mapping_that_cannot_work_is_one_line(tmp_path: Path, text: str, expected: str):
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, text)
    message = str(raised.value)
    assert message.startswith(f"WEBHOOK_INPUTS {tmp_path / 'inputs.yaml'}: ")
    assert expected in message
    assert "\n" not in message


def test_json_files_and_a_topic_two_expressions_match(tmp_path: Path):
    spec, _ = load(
        tmp_path,
        '{"inputs": [{"topics": "^ce", "format": "envelope"},'
        ' {"topics": "^c", "format": "envelope"}]}',
        topics="^c.*",
        name="inputs.json",
    )
    assert spec is not None and spec.mapping_for("x") is None
    with pytest.raises(ConfigError, match=r"topic 'ce\.1' is matched by inputs\[0\] and"):
        spec.mapping_for("ce.1")
    assert spec.mapping_for("cx").label == "inputs[1]"


def test_no_file_no_mappings_and_a_missing_file(tmp_path: Path):
    assert load_inputs(Settings.from_env({})) is None
    with pytest.raises(ConfigError, match="cannot read"):
        load_inputs(Settings.from_env({}, inputs=str(tmp_path / "nope.yaml")))
