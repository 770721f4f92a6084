"""One catalogued event type, and the error a bad catalogue file raises."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from worker.errors import InvalidInput

__all__ = ["CatalogueError", "EventType"]


class CatalogueError(InvalidInput):
    """The catalogue is unusable, or a question to it has no answer; one line naming the file
    and the entry at fault."""


@dataclass(frozen=True, slots=True)
class EventType:
    """A catalogued event type. ``schema`` (JSON Schema of the whole event) and ``example``
    (a whole event) are parsed JSON, shared: read them, copy before changing."""

    name: str
    category: str
    description: str
    schema: dict[str, Any]
    example: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The API's view: ``name``, ``category``, ``description``, ``schema``, ``example``."""
        return {
            "name": self.name,
            "category": self.category,
            "description": self.description,
            "schema": copy.deepcopy(self.schema),
            "example": copy.deepcopy(self.example),
        }
