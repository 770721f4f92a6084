"""Kafka Connect's JSON envelope: a ``JsonConverter`` value written with
``schemas.enable=true`` is ``{"schema":{...},"payload":...}``, and a format that reads only
the payload (Debezium) gets it without the schema being parsed.

The schema is most of such a value: Debezium's for a 7-column table is 2.6 KB of a 3.3 KB
value, and parsing it all with orjson costs about four times parsing the payload alone.
Jackson writes the value compact, schema first; :func:`payload` finds the payload by the
separator before it and parses from there to the closing brace, and answers MISSING for
anything else (the caller then parses the whole value, as for any other format).

Why a ``,"payload":`` found elsewhere cannot be taken for the separator. Take the whole value
to be valid JSON, ``{"schema":S,"payload":P}``. In that text the quote right after the comma
of the pattern is not escaped (an escaped one follows a backslash), so it delimits a string:
if it closed a string, ``payload`` would stand bare after it, which JSON never allows; so it
opens the string ``"payload"``, and a string followed by ``:`` is an object key. Every other
match is therefore the key ``payload`` of an object nested inside S or inside P, and the text
from just after it to the value's last brace starts with that key's value and goes on past
the end of the object holding it: at least that object's ``}`` follows the value, and orjson
rejects anything but whitespace after a complete value. So exactly one match parses: the
separator, and what it gives is ``P``, as the whole parse would. Matches are tried from the
end (the payload is shorter than the schema to scan), at most :data:`TRIES` of them (a row
with a column named ``payload`` holds one in ``before`` and one in ``after``).

What is not checked: the schema. A value whose text before the separator is not one JSON
value (not valid JSON, or more keys than ``schema``) is read by its payload, where parsing
the whole value would have rejected it or kept it wrapped; Kafka Connect never writes one.
"""

from __future__ import annotations

from typing import Any

import orjson

from worker.inputs.sources import MISSING

__all__ = ["PREFIX", "TRIES", "PayloadReader", "payload", "unwrap"]

PREFIX = b'{"schema":'
_SEPARATOR = b',"payload":'
_SKIP = len(_SEPARATOR)
_START = len(PREFIX)
TRIES = 3  # matches tried before giving up (then the whole value is parsed)


def payload(data: bytes) -> Any:
    """The ``payload`` of a compact ``{"schema":...,"payload":...}`` value, parsed alone;
    MISSING when ``data`` is not one (the caller parses it whole)."""
    return _search(data)[0]


def _search(data: bytes) -> tuple[Any, int]:
    """:func:`payload`, and where it begins (-1: MISSING)."""
    if data[-1] != 0x7D or not data.startswith(PREFIX):  # must end with "}"
        return MISSING, -1
    at = len(data)
    for _ in range(TRIES):
        at = data.rfind(_SEPARATOR, _START, at)  # from the end; then further back
        if at < 0:
            break
        try:
            return orjson.loads(data[at + _SKIP : -1]), at + _SKIP
        except orjson.JSONDecodeError:
            pass  # a key named payload inside the schema or the payload
    return MISSING, -1


class PayloadReader:
    """:func:`payload`, remembering where the last value's payload began. The values of a
    topic share their schema, so a value that starts with the same bytes as the last one up
    to its separator is read from there without a search; if what follows is not one JSON
    value before the last brace, it is searched as any other. By the argument above, the
    first way finds a payload only where the search would find the same one: text after a
    ``,"payload":`` that parses is the payload, whichever way the match was found. One
    reader for a mapping's values and one for its keys."""

    __slots__ = ("_prefix", "_start")

    def __init__(self) -> None:
        self._prefix: bytes | None = None  # up to and including the last separator found
        self._start = 0

    def __call__(self, data: bytes) -> Any:
        prefix = self._prefix
        if prefix is not None and data.startswith(prefix) and data[-1] == 0x7D:
            try:
                return orjson.loads(data[self._start : -1])
            except orjson.JSONDecodeError:
                pass  # the same schema, not one payload after it
        found, start = _search(data)
        if start >= 0:
            self._prefix, self._start = data[:start], start
        return found


def unwrap(value: Any) -> Any:
    """The payload of a decoded ``{"schema", "payload"}`` value; any other value as it is."""
    if isinstance(value, dict) and len(value) == 2 and "schema" in value and "payload" in value:
        return value["payload"]
    return value
