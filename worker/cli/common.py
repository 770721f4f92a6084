"""How every command reports: one JSON document with ``--output json``, text otherwise, and
failures as one line on stderr with a non-zero exit."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

import orjson

from worker.config import Settings
from worker.errors import WebhookWorkerError

__all__ = ["CommandError", "emit", "printable", "settings_from"]


class CommandError(WebhookWorkerError):
    """A failure to report as one line on stderr; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str, *, lines: bool = False) -> str:
    """``text`` with control characters escaped (``\\n``, ``\\x1b``; with ``lines``, line
    breaks and tabs kept): bytes a receiver sent cannot move the cursor, recolour or retitle
    the terminal of whoever reads them."""
    pattern = _CONTROL_BUT_LINES if lines else _CONTROL
    return pattern.sub(lambda m: repr(m.group())[1:-1], text)


def emit(output: str, document: Any, text: str | None = None) -> None:
    """Print ``document`` as JSON (``--output json``) or ``text`` for people."""
    if output == "json":
        sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS) + b"\n")
    else:
        sys.stdout.write((text if text is not None else str(document)) + "\n")
    sys.stdout.flush()


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings from the environment, with the command's flags winning."""
    return Settings.from_env(
        bootstrap_servers=getattr(args, "bootstrap_servers", None),
        topic_prefix=getattr(args, "topic_prefix", None),
        **overrides,
    )
