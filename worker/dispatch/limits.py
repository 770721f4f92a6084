"""Per-workspace concurrency caps and per-subscription rate limits (token buckets).

Both only ever delay the start of an attempt; they never drop or reorder an ordered
endpoint's tasks (an ordered endpoint has at most one task ready at a time).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RateLimiter", "WorkspaceSlots"]


class WorkspaceSlots:
    """How many attempts each workspace has in flight, against a cap (0 = no cap)."""

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._used: dict[str, int] = {}

    def try_take(self, workspace: str) -> bool:
        used = self._used.get(workspace, 0)
        if self._cap and used >= self._cap:
            return False
        self._used[workspace] = used + 1
        return True

    def give_back(self, workspace: str) -> None:
        used = self._used.get(workspace, 0) - 1
        if used > 0:
            self._used[workspace] = used
        else:
            self._used.pop(workspace, None)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets per subscription: ``rate`` per second, bursts of ``max(1, rate)``."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    def delay(self, sub_id: str, rate: float | None, now: float) -> float:
        """0 if an attempt may start now (and takes a token), else seconds to wait."""
        if not rate:
            return 0.0
        burst = max(1.0, rate)
        bucket = self._buckets.get(sub_id)
        if bucket is None:
            bucket = self._buckets[sub_id] = _Bucket(burst, now)
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate
