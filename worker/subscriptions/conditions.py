"""Filter conditions on the payload: ``path=value``, ``path=a|b|c`` and ``path?``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

from worker.subscriptions.model import Condition

__all__ = ["matches", "parse_condition"]

_PATH = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_MISSING = object()


def parse_condition(text: str) -> Condition:
    """Parse a ``--filter``: ``changes.stage.new=closed_won`` (equals), ``record.stage=a|b``
    (one of), ``record.email?`` (exists)."""
    text = text.strip()
    values: tuple[str, ...] = ()
    if text.endswith("?") and "=" not in text:
        path, op = text[:-1], "exists"
    elif "=" in text:
        path, raw = text.split("=", 1)
        parts = tuple(raw.split("|"))
        if any(p == "" for p in parts):
            raise ValueError(f"malformed filter {text!r}: empty value")
        op, values = ("in", parts) if len(parts) > 1 else ("eq", parts)
    else:
        raise ValueError(f"malformed filter {text!r}: use path=value, path=a|b or path?")
    if not _PATH.match(path):
        raise ValueError(f"malformed filter {text!r}: bad path {path!r}")
    return Condition(path, op, values)


def _lookup(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float) or value is None:
        return orjson.dumps(value).decode()
    return None


def matches(conditions: Iterable[Condition], data: dict[str, Any]) -> bool:
    """True when every condition holds on ``data`` (the event object)."""
    for condition in conditions:
        value = _lookup(data, condition.path)
        if value is _MISSING:
            return False
        if condition.op == "exists":
            continue
        text = _as_text(value)
        if text is None or text not in condition.values:
            return False
    return True
