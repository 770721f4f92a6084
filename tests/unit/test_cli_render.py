"""The CLI's tables (aligned, escaped, with a header) and progress bar."""

from __future__ import annotations

import pytest

from worker.cli.render import progress_bar, table


def test_columns_line_up_under_a_header() -> None:
    rows = [
        {"id": "sub_1", "status": "ACTIVE", "events": ["a.*", "b.c"], "url": None},
        {"id": "sub_long_id", "status": "TOO_MANY_ERRORS", "events": [], "url": "https://x"},
    ]
    header, first, second = table(rows, ("id", "status", "events", "url"), empty="-").split("\n")
    assert header.split() == ["ID", "STATUS", "EVENTS", "URL"]
    assert first.index("ACTIVE") == second.index("TOO_MANY_ERRORS") == header.index("STATUS")
    assert "a.*,b.c" in first and first.rstrip() == first


def test_nothing_to_show_and_terminal_escapes() -> None:
    assert table([], ("id",), empty="no tokens") == "no tokens"
    text = table([{"name": "evil\x1b]0;pwned\x07"}], ("name",), empty="")
    assert "\x1b" not in text and "\\x1b" in text


def test_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_bar("redriving", enabled=False) as off:
        assert off is None
    with progress_bar("redriving", enabled=True) as on:
        assert on is not None
        for done in range(1, 4):
            on(done, 3)
    assert capsys.readouterr().out == ""  # the bar writes to stderr only
