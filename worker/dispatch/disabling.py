"""Auto-disabling failing endpoints (status TOO_MANY_ERRORS, set by the worker).

An endpoint is disabled after ``max_failures`` failed attempts in a row (Outpost's default is
20), after failing continuously for ``max_failing_ms`` (Svix: 5 days), or at once on 410 Gone
(Standard Webhooks). A success resets the count, and so does ``subs enable`` (seen as the
status going back to ACTIVE). The partition's owner keeps the counts and records each streak on
``parked`` (``health/<sub>``); a new owner restores them on assignment (see
:meth:`FailureTracker.restore`), so a crash-looping worker cannot keep a dead endpoint enabled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FailureTracker"]


@dataclass(slots=True)
class _Streak:
    failures: int
    since_ms: int
    reported: bool = False


class FailureTracker:
    """Counts consecutive failures per subscription and calls ``disable`` once per streak."""

    def __init__(
        self, *, max_failures: int, max_failing_ms: int, disable: Callable[[str, str], None]
    ) -> None:
        self._max_failures = max_failures
        self._max_failing_ms = max_failing_ms
        self._disable = disable
        self._streaks: dict[str, _Streak] = {}

    def success(self, sub_id: str) -> bool:
        """Record a success; True if it ended a streak."""
        return self._streaks.pop(sub_id, None) is not None

    def streak(self, sub_id: str) -> tuple[int, int] | None:
        """(consecutive failures, failing since) of a failing endpoint, else None."""
        streak = self._streaks.get(sub_id)
        return (streak.failures, streak.since_ms) if streak is not None else None

    def restore(self, sub_id: str, failures: int, since_ms: int) -> None:
        """A streak recorded by a previous owner (kept if this one already counts more)."""
        streak = self._streaks.get(sub_id)
        if streak is None or streak.failures < failures:
            self._streaks[sub_id] = _Streak(failures, since_ms)

    def reset(self, sub_id: str) -> None:
        self._streaks.pop(sub_id, None)

    def failure(self, sub_id: str, now_ms: int, *, gone: bool = False) -> bool:
        """Record a failed attempt; True if the endpoint is now being disabled."""
        streak = self._streaks.get(sub_id)
        if streak is None:
            streak = self._streaks[sub_id] = _Streak(0, now_ms)
        streak.failures += 1
        if streak.reported:
            return False
        reason = ""
        if gone:
            reason = "endpoint answered 410 Gone"
        elif self._max_failures and streak.failures >= self._max_failures:
            reason = f"{streak.failures} consecutive failed attempts"
        elif self._max_failing_ms and now_ms - streak.since_ms >= self._max_failing_ms:
            reason = f"failing for {(now_ms - streak.since_ms) // 1000}s"
        if not reason:
            return False
        streak.reported = True
        self._disable(sub_id, reason)
        return True
