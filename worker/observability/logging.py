"""Log output: JSON lines for machines, a short line for people, secrets never printed.

:func:`setup_logging` configures the root logger once at start-up. Off a terminal (or with
``json_lines=True``) every record is one JSON object::

    {"ts": "2026-03-31T14:30:00.123Z", "level": "info", "logger": "worker.dispatch",
     "message": "delivered", "subscription_id": "sub_1", "delivery_id": "msg_2", "attempt": 1}

Fields passed with ``extra=`` become top-level keys. :class:`RedactSecrets` runs on the handler
before any formatting, so a ``whsec_...`` secret or an ``enc:v1:...`` ciphertext in a message,
an argument, an extra field or a traceback comes out as ``whsec_***``.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

__all__ = [
    "REDACTED",
    "HumanFormatter",
    "JsonFormatter",
    "RedactSecrets",
    "redact",
    "setup_logging",
]

REDACTED = "whsec_***"
_SECRET = re.compile(r"whsec_[A-Za-z0-9+/=_\-]+|enc:v1:[A-Za-z0-9+/=_.:\-]+")
# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
_HANDLER_NAME = "webhook-worker"


def redact(value: Any) -> Any:
    """``value`` with secrets in any string (nested in dicts, lists, tuples) replaced."""
    if isinstance(value, str):
        return _SECRET.sub(REDACTED, value) if ("whsec_" in value or "enc:v1:" in value) else value
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact(v) for v in value)
    return value


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class RedactSecrets(logging.Filter):
    """Replaces ``whsec_...`` and ``enc:v1:...`` tokens with ``whsec_***``; never drops a record.

    Attach it to a handler (as :func:`setup_logging` does), not a logger: logger filters do not
    see records propagated from child loggers.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            # A bad format string: leave it for the handler's own error reporting.
            message = None
        if message is not None:
            record.msg, record.args = redact(message), None
        for key, value in _extras(record).items():
            setattr(record, key, redact(value))
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, extras, and exc when raised."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extras(record).items():
            entry.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        try:
            return orjson.dumps(entry, default=str).decode()
        except TypeError:
            # e.g. an integer beyond 64 bits, which orjson refuses without calling default.
            return orjson.dumps(
                {k: v if k in ("ts", "level") else str(v) for k, v in entry.items()}
            ).decode()


class HumanFormatter(logging.Formatter):
    """``14:30:00.123 INFO  worker.router: message key=value ...`` for a terminal."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s.%(msecs)03d %(levelname)-5s %(name)s: %(message)s", "%H:%M:%S"
        )

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = _extras(record)
        if not extras:
            return line
        head, sep, tail = line.partition("\n")  # keep key=value on the message line
        fields = " ".join(f"{k}={v}" for k, v in extras.items())
        return f"{head} {fields}{sep}{tail}"


def setup_logging(
    level: str = "INFO", json_lines: bool | None = None, *, stream: TextIO | None = None
) -> logging.Handler:
    """Route every log record to ``stream`` (default stderr), redacted and formatted.

    ``json_lines=None`` picks JSON unless the stream is a terminal. Calling it again replaces
    the handler it installed before instead of adding a second one. Returns the handler.
    """
    stream = stream if stream is not None else sys.stderr
    if json_lines is None:
        isatty = getattr(stream, "isatty", None)
        json_lines = not (callable(isatty) and isatty())
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(RedactSecrets())
    handler.setFormatter(JsonFormatter() if json_lines else HumanFormatter())

    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(_level(level))
    return handler


def _level(level: str) -> int:
    number = logging.getLevelName(level.strip().upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r} (use DEBUG, INFO, WARNING or ERROR)")
    return number
