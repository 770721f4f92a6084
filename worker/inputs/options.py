"""Reading one mapping's keys, each error naming the key (docs/usage.md, the mapping file)."""

from __future__ import annotations

from typing import Any

from worker.errors import InvalidInput
from worker.inputs.sources import Source, SourceError

__all__ = ["Options", "SpecError"]


class SpecError(InvalidInput):
    """A mapping that cannot work: ``key`` and why (the loader adds the file and mapping)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class Options:
    """One mapping's keys; every key read is marked, so :meth:`finish` finds unknown ones."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self._raw = raw
        self._used: set[str] = set()

    def source(self, key: str, *, required: bool = False) -> Source | None:
        self._used.add(key)
        spec = self._raw.get(key)
        if spec is None:
            if required:
                raise SpecError(key, "required")
            return None
        try:
            return Source.parse(spec)
        except SourceError as exc:
            raise SpecError(key, str(exc)) from None

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        self._used.add(key)
        value = self._raw.get(key, default)
        if value not in choices:
            raise SpecError(key, f"expected {' or '.join(choices)}, got {value!r}")
        return str(value)

    def mark(self, *keys: str) -> None:
        self._used.update(keys)

    def finish(self) -> None:
        unknown = sorted(set(self._raw) - self._used)
        if unknown:
            raise SpecError(unknown[0], "unknown key")
