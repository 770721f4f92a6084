"""``cloudevents``: the CloudEvents Kafka protocol binding, binary and structured mode.

Both modes are turned into one event object first (attributes plus ``data``), so a mapping's
``field:`` paths read the same in either: ``field:workspace`` is an extension attribute.
"""

from __future__ import annotations

from typing import Any

from worker.codec.events import InvalidEventError
from worker.inputs.connect import PayloadReader
from worker.inputs.formats import InputFormat, Mapped
from worker.inputs.options import Options
from worker.inputs.record import Headers, InputRecord
from worker.inputs.sources import KeyReader

__all__ = ["build", "event_object"]

_CORE = frozenset(("specversion", "type", "id", "source", "time", "subject", "datacontenttype",
                   "dataschema", "data", "data_base64"))  # fmt: skip


# Header name to (attribute name, an extension?) ("ce_type" -> ("type", False); None for any
# other header), kept so a record's attribute names are not sliced and hashed anew each time.
# Bounded: header names come from producers.
_ATTRIBUTE_NAMES: dict[str, tuple[str, bool] | None] = {}
_MAX_NAMES = 512
_UNSEEN: Any = ("\0unseen", False)  # the default of names.get, told apart by identity


def _attribute_name(header: str) -> tuple[str, bool] | None:
    attribute = header[3:] if header.startswith("ce_") else None
    found = None if attribute is None else (attribute, attribute not in _CORE)
    if len(_ATTRIBUTE_NAMES) < _MAX_NAMES:
        _ATTRIBUTE_NAMES[header] = found
    return found


def event_object(record: InputRecord) -> dict[str, Any]:
    """The CloudEvent of ``record`` as one object (structured mode: the value itself)."""
    return _event(record)[0]


def _event(record: InputRecord) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The CloudEvent as one object, and its extension attributes when read from headers
    (binary mode; None in structured mode)."""
    event, extensions, content_type = _read_headers(record.raw_headers)
    if content_type.startswith("application/cloudevents"):
        if "batch" in content_type:
            raise InvalidEventError("cloudevents: batch mode is not supported")
        if not isinstance(record.value, dict):
            raise InvalidEventError("cloudevents: a structured event must be a JSON object")
        return record.value, None
    if "type" not in event:
        raise InvalidEventError(
            "cloudevents: no ce_type header (binary mode) and the content-type is not "
            "application/cloudevents+json (structured mode)"
        )
    if content_type:
        event["datacontenttype"] = content_type
    if record.value is not None:
        event["data"] = record.value
    return event, extensions


def _read_headers(headers: Headers) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The ``ce_`` headers as attributes, those of them that are extensions, and the content
    type (lower case; "" if none)."""
    event: dict[str, Any] = {}
    extensions: dict[str, Any] = {}
    content_type = ""
    names = _ATTRIBUTE_NAMES
    for name, raw in headers.items() if isinstance(headers, dict) else headers or ():
        found = names.get(name, _UNSEEN)
        if found is _UNSEEN:
            found = _attribute_name(name)
        if found is not None:
            try:
                value = raw.decode()  # type: ignore[union-attr]
            except AttributeError:  # a str (from a dict of headers) or no value
                value = raw or ""
            except UnicodeDecodeError:
                raise InvalidEventError(f"cloudevents: header {name} is not UTF-8") from None
            attribute, extension = found
            event[attribute] = value
            if extension:
                extensions[attribute] = value
        elif name == "content-type" and raw:
            text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
            content_type = text.lower()
    return event, extensions, content_type


class CloudEvents:
    empty = "allowed"  # binary mode: an event without data
    typed = True  # ``id`` checked here; ``record`` an object or absent
    payload: PayloadReader | None = None

    def map(self, record: InputRecord, key: KeyReader) -> Mapped:
        event, extensions = _event(record)
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
        if not isinstance(envelope.get("id", ""), str):  # structured mode: any JSON value
            raise InvalidEventError("validation: 'id' must be a string")
        data = event.get("data")
        if data is not None:
            if not isinstance(data, dict):
                raise InvalidEventError(
                    f"cloudevents: data must be a JSON object, got {type(data).__name__}"
                )
            envelope["record"] = data
        if extensions is None:  # structured mode
            extensions = {k: v for k, v in event.items() if k not in _CORE}
        if extensions:
            envelope["extensions"] = extensions
        return envelope, event


def build(options: Options) -> InputFormat:
    return CloudEvents()
