"""Bounded label values for the metrics facades: normalising free text into a category or a
verbatim name, capping how many distinct values one label takes, and remembering the label
children already resolved.

Labels are few and bounded: a caller's mistake (free text, an id) must not explode the series
count, so each label admits :data:`LABEL_VALUE_LIMIT` distinct values and turns later newcomers
into ``other``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TypeVar

__all__ = [
    "CACHED_ARGUMENTS",
    "LABEL_VALUE_LIMIT",
    "OTHER",
    "Children",
    "LabelGuard",
    "category",
    "verbatim",
]

LABEL_VALUE_LIMIT = 50
OTHER = "other"
# Distinct arguments whose label children one method remembers; further ones are resolved on
# every call (still guarded), so a caller passing free text cannot grow the memory either.
CACHED_ARGUMENTS = 4 * LABEL_VALUE_LIMIT

_Key = TypeVar("_Key")
_Child = TypeVar("_Child")

_CATEGORY_CHARS = re.compile(r"[^a-z0-9_]+")


def category(value: str) -> str:
    """``"Too Large"`` -> ``"too_large"``: a short snake_case category."""
    cleaned = _CATEGORY_CHARS.sub("_", value.strip().lower()).strip("_")[:40]
    return cleaned or "unknown"


def verbatim(value: str) -> str:
    """Topic names and delays keep their spelling (topics are case-sensitive)."""
    return value.strip()[:200] or "unknown"


class Children(dict[_Key, _Child]):
    """The label children one method resolved, by its raw arguments: a hit is a dict lookup.

    ``resolve`` normalises, guards and calls ``labels()``, once per distinct argument. Caching
    is invisible: a value the guard admitted stays admitted and one it turned into ``other``
    stays ``other``, so the same arguments always resolve to the same child.
    """

    def __init__(self, resolve: Callable[[_Key], _Child]) -> None:
        super().__init__()
        self._resolve = resolve

    def __missing__(self, key: _Key) -> _Child:
        child = self._resolve(key)
        if len(self) < CACHED_ARGUMENTS:
            self[key] = child
        return child


class LabelGuard:
    """Caps how many distinct values one label takes; later newcomers become ``other``."""

    def __init__(self, known: Iterable[str] = (), limit: int = LABEL_VALUE_LIMIT) -> None:
        self._seen: set[str] = set(known)
        self._limit = max(limit, len(self._seen))

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return OTHER
        self._seen.add(value)
        return value
