"""Opaque list cursors: where the next page starts, tied to the filters of the first page.

A cursor is base64url (no padding) of a JSON array ``[digest, key, bounds]``:

- ``digest``: a hash of the query's name and its filters (subscription, outcome, event id,
  reason, and which time bounds were given). A cursor presented with other filters is refused.
- ``key``: the sort key of the last row returned (keyset pagination: the next page is what
  sorts strictly after it, so rows written meanwhile never shift a page).
- ``bounds``: ``[since_ms, until_ms]`` of the first page. Later pages keep them, so
  ``since=2h`` stays anchored to when the listing began instead of moving with each request.

Cursors are not signed: the key only says where to resume inside a listing the caller is
already allowed to read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from worker.errors import InvalidInput

__all__ = ["BadCursor", "Bounds", "decode_cursor", "encode_cursor", "filters_digest"]

Bounds = tuple[int | None, int | None]


class BadCursor(InvalidInput):
    """The cursor is malformed, or belongs to a query with other filters."""


def filters_digest(query: str, **filters: object) -> str:
    """A short hash of ``query`` and its ``filters`` (values must be JSON-serialisable)."""
    canonical = orjson.dumps([query, filters], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:16]


def encode_cursor(digest: str, key: Sequence[int | str], bounds: Bounds) -> str:
    raw = orjson.dumps([digest, list(key), list(bounds)])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(
    text: str, digest: str, key_types: Sequence[type[int] | type[str]]
) -> tuple[tuple[Any, ...], Bounds]:
    """The key (checked against ``key_types``) and time bounds of ``text``.

    Raises :class:`BadCursor` when the cursor is not one of ours or was made for a query
    with other filters than the one ``digest`` describes.
    """
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        found, key, bounds = orjson.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise BadCursor("malformed cursor") from None
    if found != digest:
        raise BadCursor("the cursor belongs to a query with other filters")
    if (
        not isinstance(key, list)
        or len(key) != len(key_types)
        or not all(_is(value, kind) for value, kind in zip(key, key_types, strict=True))
        or not isinstance(bounds, list)
        or len(bounds) != 2
        or not all(b is None or _is(b, int) for b in bounds)
    ):
        raise BadCursor("malformed cursor")
    return tuple(key), (bounds[0], bounds[1])


def _is(value: object, kind: type[int] | type[str]) -> bool:
    # bool is an int to Python, never to us.
    return isinstance(value, kind) and not isinstance(value, bool)
