"""The request body for one subscription: the event after field selection, with ``changes``
only on update events. Never mutates the event (it is shared across subscriptions)."""

from __future__ import annotations

from typing import Any

import orjson

from worker.model import Event
from worker.subscriptions.model import Subscription

__all__ = ["render_body"]


def render_body(event: Event, sub: Subscription, default: bytes | None = None) -> bytes:
    """``default`` is the event rendered without field selection, cached by the caller."""
    data = event.data
    keep_changes = event.event.endswith(".updated")
    record = data.get("record")
    select = bool(sub.fields) and isinstance(record, dict)
    if not select and (keep_changes or "changes" not in data):
        return default if default is not None else orjson.dumps(data)
    out: dict[str, Any] = dict(data)
    if not keep_changes:
        out.pop("changes", None)
    if select and isinstance(record, dict):
        wanted = set(sub.fields) | {"id"}
        out["record"] = {k: v for k, v in record.items() if k in wanted}
    return orjson.dumps(out)
