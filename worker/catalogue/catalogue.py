"""The catalogue: immutable once loaded, and the questions the CLI, the API and the portal ask
of it. Which patterns a catalogue accepts follows the router's matching rule exactly
(``pattern_matches``): a pattern is refused only if no catalogued type could ever reach it."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from worker.catalogue.model import CatalogueError, EventType
from worker.catalogue.parse import read_catalogue
from worker.config import Settings
from worker.subscriptions.patterns import pattern_matches

__all__ = ["Catalogue", "example_catalogue_path", "load_catalogue"]


def example_catalogue_path() -> Path:
    """The example catalogue installed with the package (what ``dev`` uses)."""
    return Path(__file__).with_name("example.json")


def load_catalogue(settings: Settings) -> Catalogue | None:
    """The catalogue ``WEBHOOK_EVENT_TYPES`` names; None when it is unset."""
    return Catalogue.load(settings.event_types) if settings.event_types else None


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The deployment's event types, in the file's order."""

    types: tuple[EventType, ...]

    @classmethod
    def load(cls, path: str | Path) -> Catalogue:
        """Read and check the file; CatalogueError names the file and the bad entry."""
        return cls(read_catalogue(path))

    def categories(self) -> list[str]:
        """Each category once, in the order the file first names it."""
        return list(dict.fromkeys(t.category for t in self.types))

    def by_category(self, category: str | None) -> list[EventType]:
        """The types of ``category`` (all of them for None)."""
        return [t for t in self.types if category is None or t.category == category]

    def get(self, name: str) -> EventType | None:
        return next((t for t in self.types if t.name == name), None)

    def unmatched(self, patterns: Iterable[str]) -> list[str]:
        """The patterns no catalogued type matches (``*`` always matches), in their order."""
        return [p for p in patterns if p != "*" and self._first_match(p) is None]

    def select_all(self, category: str) -> list[str]:
        """What "Select All" of a category stores: ``category.*`` when that pattern matches
        exactly the category's types (so it also takes the category's future types), else
        their names. Empty for an unknown category."""
        names = [t.name for t in self.by_category(category)]
        wildcard = f"{category}.*"
        matched = [t.name for t in self.types if pattern_matches(wildcard, t.name)]
        return [wildcard] if names and matched == names else names

    def example_event(
        self, pattern_or_name: str, workspace: str, entity: str | None = None
    ) -> dict[str, Any]:
        """A test event: the example of the first type ``pattern_or_name`` matches, with a
        fresh ``id`` and ``timestamp``, the given workspace and (when given) entity."""
        kind = self._first_match(pattern_or_name)
        if kind is None:
            raise CatalogueError(f"no catalogued event type matches {pattern_or_name!r}")
        event = copy.deepcopy(kind.example)
        event["id"] = f"evt_test_{uuid.uuid4().hex[:16]}"
        event["timestamp"] = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        event["workspace"] = workspace
        if entity is not None:
            event["entity"] = entity
        return event

    def to_json(self) -> list[dict[str, Any]]:
        """Every type's API view, in order."""
        return [t.to_json() for t in self.types]

    def _first_match(self, pattern: str) -> EventType | None:
        return next((t for t in self.types if pattern_matches(pattern, t.name)), None)
