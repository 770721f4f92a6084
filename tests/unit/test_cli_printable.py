"""Receivers' bytes shown by the CLI (logs, test-fire) cannot drive the terminal."""

from __future__ import annotations

from worker.cli.common import printable


def test_control_characters_are_escaped() -> None:
    hostile = "ok\x1b]0;pwned\x07\x1b[2J\r\nnext\x00\x9b31m"
    assert printable(hostile) == "ok\\x1b]0;pwned\\x07\\x1b[2J\\r\\nnext\\x00\\x9b31m"
    assert printable('{"a": "caf\u00e9 \u2713"}') == '{"a": "caf\u00e9 \u2713"}'


def test_line_breaks_can_be_kept() -> None:
    assert printable("a\n\tb\r\x1b[1m", lines=True) == "a\n\tb\\r\\x1b[1m"
