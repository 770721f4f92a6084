"""Catalogue: loading errors, which patterns match nothing, Select All, test events."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from worker.catalogue import Catalogue, CatalogueError, EventType, load_catalogue
from worker.config import Settings


def entry(name: str, category: str | None = None, **changes: Any) -> dict[str, Any]:
    value = {
        "name": name,
        "category": category or name.split(".")[0],
        "description": f"{name} happened.",
        "schema": {"type": "object", "required": ["event"]},
        "example": {
            "id": "evt_1",
            "event": name,
            "entity": name.split(".")[0],
            "workspace": "acme",
            "timestamp": "2026-03-31T14:30:00Z",
            "record": {"id": "a1"},
        },
    }
    value.update(changes)
    return value


def write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "types.json"
    path.write_bytes(document if isinstance(document, bytes) else orjson.dumps(document))
    return path


def catalogue(*entries: dict[str, Any]) -> Catalogue:
    return Catalogue(tuple(EventType(**e) for e in entries))


CRM = catalogue(
    entry("contact.created"),
    entry("contact.updated"),
    entry("contact.deleted"),
    entry("deal.stage_changed"),
    entry("deal.won"),
    entry("record.created", "records"),
    entry("ticket.closed", "support"),
    entry("chat.closed", "support"),
)


def test_load_reads_types_in_file_order(tmp_path: Path) -> None:
    path = write(tmp_path, {"event_types": [entry("b.created"), entry("a.created", "b")]})
    loaded = Catalogue.load(path)
    assert [t.name for t in loaded.types] == ["b.created", "a.created"]
    assert loaded.categories() == ["b"]
    assert loaded.get("a.created") == EventType(**entry("a.created", "b"))
    assert loaded.get("nope.created") is None


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"{not json", r"types\.json: not valid JSON"),
        ([], r'expected \{"event_types": \[\.\.\.\]\}'),
        ({"event_types": {}}, r'expected \{"event_types"'),
        ({"event_types": []}, "event_types is empty"),
        ({"event_types": ["x"]}, r"event_types\[0\]: expected an object"),
        (
            {"event_types": [{"name": "a.b", "category": "a"}]},
            r"event_types\[0\] \('a.b'\): missing description, schema, example",
        ),
        (
            {"event_types": [entry("a.b"), entry("a.b")]},
            r"event_types\[1\] \('a.b'\): duplicate name 'a.b'",
        ),
        ({"event_types": [entry("created")]}, "name must look like category.action"),
        ({"event_types": [entry("a.*")]}, "name must look like category.action"),
        ({"event_types": [entry("a b.c")]}, "name must look like category.action"),
        ({"event_types": [entry("a.saved")]}, r"X\.saved is a pattern"),
        ({"event_types": [entry("a.b", "a.b")]}, "category must be one word"),
        ({"event_types": [entry("a.b", description=" ")]}, "description must be a non-empty"),
        ({"event_types": [entry("a.b", schema=True)]}, "schema must be a JSON Schema object"),
        ({"event_types": [entry("a.b", example=[])]}, "example must be an event object"),
        (
            {"event_types": [entry("a.b", example={"event": "a.c", "workspace": "w"})]},
            r"example's event is 'a.c', expected 'a.b'",
        ),
        ({"event_types": [entry("a.b", example={"event": "a.b"})]}, "example has no workspace"),
        ({"event_types": [entry("a.b", colour="red")]}, r"unknown field\(s\) colour"),
    ],
)
def test_a_bad_file_is_one_line_naming_file_and_entry(
    tmp_path: Path, document: Any, message: str
) -> None:
    path = write(tmp_path, document)
    with pytest.raises(CatalogueError, match=message) as caught:
        Catalogue.load(path)
    text = str(caught.value)
    assert text.startswith(f"event types {path}: ")
    assert "\n" not in text
    assert isinstance(caught.value, ValueError)


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match=r"missing\.json: cannot read: No such file"):
        Catalogue.load(tmp_path / "missing.json")


def test_load_catalogue_follows_the_setting(tmp_path: Path) -> None:
    assert load_catalogue(Settings.from_env({})) is None
    path = write(tmp_path, {"event_types": [entry("a.created")]})
    settings = Settings.from_env({"WEBHOOK_EVENT_TYPES": str(path)})
    assert settings.event_types == str(path)
    loaded = load_catalogue(settings)
    assert loaded is not None and [t.name for t in loaded.types] == ["a.created"]


def test_unmatched_follows_the_matching_rules() -> None:
    good = [
        "*",
        "contact.created",
        "contact.*",
        "contact.saved",  # created and updated both exist
        "deal.*",
        "deal.won",
        "record.saved",  # created alone is enough
    ]
    assert CRM.unmatched(good) == []
    bad = [
        "contact.merged",  # an exact name must exist
        "deal.saved",  # neither deal.created nor deal.updated
        "account.*",  # no name starts with account.
        "contact",  # a category is contact.*, not contact
        "contac.*",
        "deal.won.*",
    ]
    assert CRM.unmatched([*bad[:3], "*", *bad[3:]]) == bad


def test_star_matches_even_an_odd_catalogue() -> None:
    assert catalogue(entry("a.b.c")).unmatched(["*", "a.*", "a.b.*", "a.b.c"]) == []


def test_categories_and_by_category() -> None:
    assert CRM.categories() == ["contact", "deal", "records", "support"]
    assert [t.name for t in CRM.by_category("support")] == ["ticket.closed", "chat.closed"]
    assert len(CRM.by_category(None)) == len(CRM.types)
    assert CRM.by_category("nope") == []


def test_select_all_stores_the_wildcard_when_it_selects_exactly_the_category() -> None:
    assert CRM.select_all("contact") == ["contact.*"]
    assert CRM.select_all("deal") == ["deal.*"]
    # Names that do not share the category's prefix: the names themselves.
    assert CRM.select_all("records") == ["record.created"]
    assert CRM.select_all("support") == ["ticket.closed", "chat.closed"]
    assert CRM.select_all("nope") == []


def test_select_all_lists_names_when_the_wildcard_would_take_more() -> None:
    # deal.* would also take the "pipeline" category's deal.forecast.
    mixed = catalogue(entry("deal.created"), entry("deal.forecast", "pipeline"))
    assert mixed.select_all("deal") == ["deal.created"]
    assert mixed.select_all("pipeline") == ["deal.forecast"]


def test_example_event_is_a_fresh_copy_in_the_workspace() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    first = CRM.example_event("contact.updated", "globex")
    second = CRM.example_event("contact.updated", "globex", entity="person")
    assert first["event"] == "contact.updated" and first["workspace"] == "globex"
    assert first["record"] == {"id": "a1"} and first["entity"] == "contact"
    assert second["entity"] == "person"
    assert re.fullmatch(r"evt_test_[0-9a-f]{16}", first["id"])
    assert first["id"] != second["id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", first["timestamp"])
    stamp = datetime.fromisoformat(first["timestamp"].replace("Z", "+00:00"))
    assert before <= stamp <= datetime.now(UTC)
    # The catalogue's own example is untouched.
    first["record"]["id"] = "changed"
    example = CRM.get("contact.updated")
    assert example is not None
    assert example.example["id"] == "evt_1" and example.example["workspace"] == "acme"
    assert example.example["record"] == {"id": "a1"}


@pytest.mark.parametrize(
    ("pattern", "name"),
    [
        ("*", "contact.created"),
        ("contact.*", "contact.created"),
        ("deal.*", "deal.stage_changed"),
        ("contact.saved", "contact.created"),
        ("record.saved", "record.created"),
        ("chat.closed", "chat.closed"),
    ],
)
def test_example_event_of_a_pattern_is_its_first_match(pattern: str, name: str) -> None:
    assert CRM.example_event(pattern, "acme")["event"] == name


def test_example_event_of_an_unmatched_pattern_is_an_error() -> None:
    with pytest.raises(CatalogueError, match=r"no catalogued event type matches 'deal\.saved'"):
        CRM.example_event("deal.saved", "acme")


def test_to_json_is_the_api_view() -> None:
    view = CRM.to_json()
    assert [v["name"] for v in view] == [t.name for t in CRM.types]
    assert set(view[0]) == {"name", "category", "description", "schema", "example"}
    view[0]["example"]["workspace"] = "changed"
    assert CRM.types[0].example["workspace"] == "acme"
