"""Per-token request limits: a token bucket per API token, in the process.

Each replica keeps its own buckets, so N replicas allow up to N times the rate; that is the
usual trade (no shared state on the hot path) and the docs say so.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """``rate`` requests per second with bursts of ``burst``; ``take`` answers how long to
    wait (0.0 when the request may go now)."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str) -> float:
        """Spend one token of ``key``; return 0.0, or the seconds until one is available."""
        if self._rate <= 0:
            return 0.0
        now = self._clock()
        tokens, at = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - at) * self._rate)
        if tokens >= 1.0 - 1e-9:  # float refill: 0.1 s at 10/s is one token
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > 100_000:  # forget idle keys (their buckets are full anyway)
            horizon = now - self._burst / self._rate
            self._buckets = {k: v for k, v in self._buckets.items() if v[1] > horizon}
        return (1.0 - tokens) / self._rate

    @staticmethod
    def retry_after(wait_s: float) -> str:
        """The Retry-After header value: whole seconds, at least 1."""
        return str(max(1, math.ceil(wait_s)))
