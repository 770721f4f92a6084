"""Event patterns: ``record.created`` (exact), ``contact.*`` (category), ``*`` (all) and
``X.saved`` (``X.created`` or ``X.updated``)."""

from __future__ import annotations

import re

__all__ = ["expand_exact", "validate_pattern"]

_EXACT = re.compile(r"^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*$")
_CATEGORY = re.compile(r"^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*\.\*$")


def validate_pattern(pattern: str) -> str:
    """Return ``pattern`` if well formed, else raise ValueError with a one-line reason."""
    if pattern == "*" or _EXACT.match(pattern) or _CATEGORY.match(pattern):
        return pattern
    raise ValueError(
        f"malformed event pattern {pattern!r}: use an event type (record.created), "
        "a category (contact.*), record.saved, or *"
    )


def expand_exact(pattern: str) -> tuple[str, ...]:
    """The exact event types an exact pattern stands for (``X.saved`` is two)."""
    if pattern.endswith(".saved"):
        stem = pattern[: -len("saved")]
        return (stem + "created", stem + "updated")
    return (pattern,)
