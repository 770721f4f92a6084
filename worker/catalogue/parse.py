"""Reading a catalogue file: ``{"event_types": [{name, category, description, schema,
example}, ...]}``, checked entry by entry so that an error names the file and the entry."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

from worker.catalogue.model import CatalogueError, EventType

__all__ = ["parse_catalogue", "read_catalogue"]

# ``category.action`` (more dotted parts allowed, as in ``customer.subscription.created``).
_NAME = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$")
_CATEGORY = re.compile(r"^[A-Za-z0-9_-]+$")
_FIELDS = ("name", "category", "description", "schema", "example")


def read_catalogue(path: str | Path) -> tuple[EventType, ...]:
    """The types of the catalogue file at ``path``; CatalogueError if unreadable or invalid."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise CatalogueError(f"event types {path}: cannot read: {exc.strerror}") from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CatalogueError(f"event types {path}: not valid JSON: {exc}") from None
    return parse_catalogue(data, str(path))


def parse_catalogue(data: Any, source: str) -> tuple[EventType, ...]:
    """The types of a parsed catalogue document; ``source`` names it in errors."""
    where = f"event types {source}"
    if not isinstance(data, dict) or not isinstance(data.get("event_types"), list):
        raise CatalogueError(f'{where}: expected {{"event_types": [...]}}')
    if not data["event_types"]:
        raise CatalogueError(f"{where}: event_types is empty")
    types: list[EventType] = []
    seen: set[str] = set()
    for index, entry in enumerate(data["event_types"]):
        label = f"{where}: event_types[{index}]"
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            label += f" ({entry['name']!r})"
        kind = _entry(entry, label)
        if kind.name in seen:
            raise CatalogueError(f"{label}: duplicate name {kind.name!r}")
        seen.add(kind.name)
        types.append(kind)
    return tuple(types)


def _entry(entry: Any, label: str) -> EventType:
    if not isinstance(entry, dict):
        raise CatalogueError(f"{label}: expected an object")
    missing = [f for f in _FIELDS if f not in entry]
    if missing:
        raise CatalogueError(f"{label}: missing {', '.join(missing)}")
    unknown = sorted(set(entry) - set(_FIELDS))
    if unknown:
        raise CatalogueError(f"{label}: unknown field(s) {', '.join(unknown)}")
    name, category, description = entry["name"], entry["category"], entry["description"]
    schema, example = entry["schema"], entry["example"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise CatalogueError(f"{label}: name must look like category.action, got {name!r}")
    if name.endswith(".saved"):
        raise CatalogueError(f"{label}: X.saved is a pattern (X.created or X.updated), not a name")
    if not isinstance(category, str) or not _CATEGORY.match(category):
        raise CatalogueError(f"{label}: category must be one word, got {category!r}")
    if not isinstance(description, str) or not description.strip():
        raise CatalogueError(f"{label}: description must be a non-empty string")
    if not isinstance(schema, dict):
        raise CatalogueError(f"{label}: schema must be a JSON Schema object")
    if not isinstance(example, dict):
        raise CatalogueError(f"{label}: example must be an event object")
    if example.get("event") != name:
        raise CatalogueError(
            f"{label}: example's event is {example.get('event')!r}, expected {name!r}"
        )
    if not isinstance(example.get("workspace"), str):
        raise CatalogueError(f"{label}: example has no workspace")
    return EventType(name, category, description, schema, example)
