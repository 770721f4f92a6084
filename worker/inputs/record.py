"""One input record as the formats see it: position, key, headers, time and the value."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Headers", "InputRecord"]

# As confluent-kafka hands them out (a list of pairs), or a dict from other callers.
Headers = list[tuple[str, str | bytes | None]] | dict[str, str | bytes | None] | None

_UNSET: Any = object()


@dataclass(slots=True)
class InputRecord:
    """A consumed record. ``value`` is the decoded value (set by the decoder); the key is
    decoded only when a format or a ``key:`` source asks for it (``decoded_key``)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    raw_headers: Headers
    value: Any = None
    decoded_key: Any = _UNSET
    _headers: dict[str, bytes] | None = field(default=None, repr=False)

    @property
    def headers(self) -> dict[str, bytes]:
        """Headers by name (the last one wins when a name repeats)."""
        if self._headers is None:
            self._headers = {
                str(name): (v.encode() if isinstance(v, str) else (v or b""))
                for name, v in (
                    self.raw_headers.items()
                    if isinstance(self.raw_headers, dict)
                    else self.raw_headers or ()
                )
            }
        return self._headers

    def header_text(self, name: str) -> str | None:
        raw = self.headers.get(name)
        if raw is None:
            return None
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return None

    @property
    def key_decoded(self) -> bool:
        return self.decoded_key is not _UNSET
