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

__all__ = ["PREFIX", "TRIES", "payload", "unwrap"]

PREFIX = b'{"schema":'
_SEPARATOR = b',"payload":'
_SKIP = len(_SEPARATOR)
TRIES = 3  # matches tried before giving up (then the whole value is parsed)


def payload(data: bytes) -> Any:
    """The ``payload`` of a compact ``{"schema":...,"payload":...}`` value, parsed alone;
    MISSING when ``data`` is not one (the caller parses it whole)."""
    if not data.startswith(PREFIX) or data[-1] != 0x7D:  # ends with "}"
        return MISSING
    end = len(data)
    for _ in range(TRIES):
        at = data.rfind(_SEPARATOR, len(PREFIX), end)
        if at < 0:
            return MISSING
        try:
            return orjson.loads(data[at + _SKIP : -1])
        except orjson.JSONDecodeError:
            end = at  # a key named payload inside the schema or the payload: look further back
    return MISSING


def unwrap(value: Any) -> Any:
    """The payload of a decoded ``{"schema", "payload"}`` value; any other value as it is."""
    if isinstance(value, dict) and len(value) == 2 and "schema" in value and "payload" in value:
        return value["payload"]
    return value
