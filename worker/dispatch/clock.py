"""The dispatcher's sense of time: a monotonic clock for scheduling, wall time for records.

Passed in so the scheduling state can be driven by a fake clock in unit tests.
"""

from __future__ import annotations

import time

__all__ = ["Clock"]


class Clock:
    """Real time. Tests subclass it (or pass any object with the same two methods)."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now_ms(self) -> int:
        return int(time.time() * 1000)
