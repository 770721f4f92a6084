"""``cloudevents``: the CloudEvents Kafka protocol binding, binary and structured mode.

Both modes are turned into one event object first (attributes plus ``data``), so a mapping's
``field:`` paths read the same in either: ``field:workspace`` is an extension attribute.
"""

from __future__ import annotations

from typing import Any

from worker.codec.events import InvalidEventError
from worker.inputs.formats import InputFormat, Mapped
from worker.inputs.options import Options
from worker.inputs.record import InputRecord
from worker.inputs.sources import KeyReader

__all__ = ["build", "event_object"]

_CORE = frozenset(("specversion", "type", "id", "source", "time", "subject", "datacontenttype",
                   "dataschema", "data", "data_base64"))  # fmt: skip


def event_object(record: InputRecord) -> dict[str, Any]:
    """The CloudEvent of ``record`` as one object (structured mode: the value itself)."""
    event: dict[str, Any] = {}
    content_type = ""
    headers = record.raw_headers
    for name, raw in headers.items() if isinstance(headers, dict) else headers or ():
        if name.startswith("ce_"):
            try:
                event[name[3:]] = raw.decode()  # type: ignore[union-attr]
            except AttributeError:  # a str (from a dict of headers) or no value
                event[name[3:]] = raw or ""
            except UnicodeDecodeError:
                raise InvalidEventError(f"cloudevents: header {name} is not UTF-8") from None
        elif name == "content-type" and raw:
            text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
            content_type = text.lower()
    if content_type.startswith("application/cloudevents"):
        if "batch" in content_type:
            raise InvalidEventError("cloudevents: batch mode is not supported")
        if not isinstance(record.value, dict):
            raise InvalidEventError("cloudevents: a structured event must be a JSON object")
        return record.value
    if "type" not in event:
        raise InvalidEventError(
            "cloudevents: no ce_type header (binary mode) and the content-type is not "
            "application/cloudevents+json (structured mode)"
        )
    if content_type:
        event["datacontenttype"] = content_type
    if record.value is not None:
        event["data"] = record.value
    return event


class CloudEvents:
    empty = "allowed"  # binary mode: an event without data

    def map(self, record: InputRecord, key: KeyReader) -> Mapped:
        event = event_object(record)
        if "data_base64" in event:
            raise InvalidEventError("cloudevents: data_base64 is not a JSON object")
        kind = event.get("type")
        if not isinstance(kind, str):
            raise InvalidEventError("cloudevents: 'type' must be a string")
        envelope: dict[str, Any] = {"event": kind}
        for name in ("id", "time", "source", "subject"):
            value = event.get(name)
            if value is not None:
                envelope["timestamp" if name == "time" else name] = value
        data = event.get("data")
        if data is not None:
            if not isinstance(data, dict):
                raise InvalidEventError(
                    f"cloudevents: data must be a JSON object, got {type(data).__name__}"
                )
            envelope["record"] = data
        extensions = {k: v for k, v in event.items() if k not in _CORE}
        if extensions:
            envelope["extensions"] = extensions
        return envelope, event


def build(options: Options) -> InputFormat:
    return CloudEvents()
