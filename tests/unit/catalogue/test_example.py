"""The example catalogue shipped in the package: it loads, every example is valid against its
own schema, and it covers every event the README, ``dev`` and ``demo`` emit."""

from __future__ import annotations

import itertools
import re
import shlex
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.support.worker import REPO
from worker.catalogue import Catalogue, EventType, example_catalogue_path
from worker.cli.demo import SAMPLE_EVENTS, sample_event

EXAMPLE = Catalogue.load(example_catalogue_path())
ENVELOPE = {"id", "event", "workspace", "timestamp", "record"}


def validator(kind: EventType) -> Draft202012Validator:
    return Draft202012Validator(kind.schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_the_example_catalogue_is_a_realistic_size() -> None:
    assert 40 <= len(EXAMPLE.types) <= 60
    assert {"record", "contact", "account", "deal", "conversation", "project", "user"} <= set(
        EXAMPLE.categories()
    )
    for category in EXAMPLE.categories():
        assert EXAMPLE.select_all(category) == [f"{category}.*"]


@pytest.mark.parametrize("kind", EXAMPLE.types, ids=lambda t: t.name)
def test_each_schema_is_valid_and_its_example_conforms(kind: EventType) -> None:
    Draft202012Validator.check_schema(kind.schema)
    assert kind.schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(kind.schema["required"]) >= ENVELOPE
    assert kind.schema["properties"]["record"]["type"] == "object"
    assert kind.schema["properties"]["record"]["properties"]
    errors = [e.message for e in validator(kind).iter_errors(kind.example)]
    assert errors == []
    # A schema that accepted anything would prove nothing.
    wrong: dict[str, Any] = {**kind.example, "event": "other.event"}
    assert not validator(kind).is_valid(wrong)
    assert not validator(kind).is_valid({k: v for k, v in kind.example.items() if k != "record"})


def readme_events() -> tuple[set[str], set[str]]:
    """Event types (``--event``) and patterns (``--events``) in the sh blocks of the README
    and of docs/."""
    texts = [(REPO / "README.md").read_text()]
    texts += [path.read_text() for path in sorted((REPO / "docs").glob("*.md"))]
    blocks = [block for text in texts for block in re.findall(r"```sh\n(.*?)```", text, re.S)]
    names: set[str] = set()
    patterns: set[str] = set()
    for block in blocks:
        words = shlex.split(block.replace("\\\n", " "), comments=True)
        for flag, value in itertools.pairwise(words):
            if flag == "--event":
                names.add(value)
            elif flag == "--events":
                patterns.update(value.split(","))
    return names, patterns


def test_it_covers_what_the_readme_emits_and_subscribes_to() -> None:
    names, patterns = readme_events()
    assert names and patterns  # the README still shows both
    assert [n for n in sorted(names) if EXAMPLE.get(n) is None] == []
    assert EXAMPLE.unmatched(sorted(patterns)) == []


def test_it_covers_the_demo_and_dev_sample_events() -> None:
    # `dev` emits demo.sample_event's events, `demo producer` the same; both subscribe to *.
    emitted = [sample_event(i) for i in range(2 * len(SAMPLE_EVENTS))]
    assert {e["event"] for e in emitted} == set(SAMPLE_EVENTS)
    for event in emitted:
        kind = EXAMPLE.get(event["event"])
        assert kind is not None, event["event"]
        assert [e.message for e in validator(kind).iter_errors(event)] == []


def test_test_fire_finds_an_example_for_every_pattern_shape() -> None:
    for pattern in ("*", "contact.*", "deal.saved", "record.saved", "user.invited"):
        event = EXAMPLE.example_event(pattern, "globex")
        kind = EXAMPLE.get(event["event"])
        assert kind is not None and event["workspace"] == "globex"
        assert validator(kind).is_valid(event)
