"""``since``/``until``: RFC 3339 with an offset or a duration back from now, else 422."""

from __future__ import annotations

import time

import pytest

from worker.api.deps import parse_time
from worker.api.problems import Problem


def test_durations_and_rfc3339() -> None:
    now = time.time() * 1000
    assert abs(parse_time("2h", "since") - (now - 7_200_000)) < 5_000  # type: ignore[operator]
    assert parse_time("2026-03-31T14:30:00Z", "since") == 1_774_967_400_000
    assert parse_time("2026-03-31T16:30:00+02:00", "since") == 1_774_967_400_000
    assert parse_time(None, "since") is None


@pytest.mark.parametrize("text", ["yesterday", "2026-03-31T14:30:00", "2026-13-01T00:00:00Z", ""])
def test_anything_else_is_a_422(text: str) -> None:
    with pytest.raises(Problem) as caught:
        parse_time(text, "until")
    assert caught.value.status == 422 and "until" in caught.value.detail
