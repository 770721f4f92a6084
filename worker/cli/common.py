"""How every command reports: one JSON document with ``--output json``, text otherwise, and
failures as one line on stderr with a non-zero exit."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from worker.config import Settings

__all__ = ["CommandError", "emit", "settings_from"]


class CommandError(Exception):
    """A failure to report as one line on stderr; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


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
