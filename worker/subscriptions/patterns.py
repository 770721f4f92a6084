"""Event patterns: ``record.created`` (exact), ``contact.*`` (category), ``*`` (all) and
``X.saved`` (``X.created`` or ``X.updated``)."""

from __future__ import annotations

import re

__all__ = ["category_prefix", "expand_exact", "pattern_matches", "validate_pattern"]

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


def category_prefix(pattern: str) -> str | None:
    """``"contact.*"`` -> ``"contact."``: the prefix a category pattern stands for, else None."""
    return pattern[:-1] if pattern.endswith(".*") else None


def pattern_matches(pattern: str, kind: str) -> bool:
    """Whether ``pattern`` selects events of type ``kind``: the rule the router's index applies
    to a whole table at once (``SubscriptionIndex``), for one pair."""
    if pattern == "*":
        return True
    prefix = category_prefix(pattern)
    if prefix is not None:
        return kind.startswith(prefix)
    return kind in expand_exact(pattern)
