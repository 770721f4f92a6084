"""Where a part of the envelope comes from: a field path, a header, the key, the topic or a
constant (docs/usage.md, "Where a part comes from")."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from worker.errors import InvalidInput
from worker.inputs.record import InputRecord

__all__ = ["MISSING", "Source", "SourceError", "lookup"]

_SEGMENT = re.compile(r"^[^.\s]+$")
KINDS = ("field", "header", "key", "topic", "const")


class SourceError(InvalidInput):
    """A source string that cannot work; the message says why."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

KeyReader = Callable[[InputRecord], Any]


def lookup(root: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` (object keys and list indexes), or MISSING."""
    node = root
    for segment in path:
        if type(node) is dict:
            node = node.get(segment, MISSING)
            if node is MISSING:
                return MISSING
        elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
            node = node[int(segment)]
        else:
            return MISSING
    return node


def _path(text: str) -> tuple[str, ...]:
    parts = tuple(text.split("."))
    if not text or not all(_SEGMENT.match(p) for p in parts):
        raise SourceError(f"bad path {text!r}: names separated by single dots")
    return parts


@dataclass(frozen=True, slots=True)
class Source:
    """One parsed source. ``get`` answers MISSING when it finds nothing."""

    kind: str
    arg: str = ""
    path: tuple[str, ...] = ()

    @classmethod
    def parse(cls, spec: object) -> Source:
        if not isinstance(spec, str):
            raise SourceError(
                f"expected a source string (field:PATH, header:NAME, key[:PATH], topic, "
                f"const:TEXT), got {type(spec).__name__}"
            )
        kind, sep, arg = spec.partition(":")
        if kind == "topic" and not sep:
            return cls("topic")
        if kind == "key":
            return cls("key", path=_path(arg) if sep else ())
        if kind == "field" and sep:
            return cls("field", arg, _path(arg))
        if kind == "header" and sep and arg:
            return cls("header", arg)
        if kind == "const" and sep:
            return cls("const", arg)
        raise SourceError(
            f"unknown source {spec!r} (use field:PATH, header:NAME, key, key:PATH, topic "
            "or const:TEXT)"
        )

    def get(self, record: InputRecord, root: Any, key: KeyReader) -> Any:
        kind = self.kind
        if kind == "field":
            return lookup(root, self.path)
        if kind == "header":
            text = record.header_text(self.arg)
            return MISSING if text is None else text
        if kind == "const":
            return self.arg
        if kind == "topic":
            return record.topic
        if not self.path:  # the whole key, as text
            if record.key is None:
                return MISSING
            try:
                return record.key.decode()
            except UnicodeDecodeError:
                return MISSING
        return lookup(key(record), self.path)

    def text(self, record: InputRecord, root: Any, key: KeyReader) -> str | None:
        """The value as text: strings as they are, numbers in decimal; else None."""
        value = lookup(root, self.path) if self.kind == "field" else self.get(record, root, key)
        if type(value) is str:
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return None

    def __str__(self) -> str:
        if self.kind == "topic":
            return "topic"
        if self.kind == "key":
            return "key" + (":" + ".".join(self.path) if self.path else "")
        return f"{self.kind}:{self.arg}"
