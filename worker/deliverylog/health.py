"""An endpoint's health from the index: its success rate and attempt counts over 24 hours,
its last attempt, how many attempts in a row failed, and its activity per hour (the portal's
chart). Counts come from the ``hourly`` table the writer keeps with the attempts, so a chart
of 7 days reads at most 169 rows whatever the volume; Send test's attempts are left out."""

from __future__ import annotations

from typing import Any

from worker.deliverylog.queries import rfc3339
from worker.deliverylog.schema import HOUR_MS, SUB_KEY
from worker.deliverylog.store import TEST_PREFIX, Store

__all__ = ["STREAK_CAP", "EndpointHealth"]

STREAK_CAP = 100  # "100 or more failures in a row" is as useful as the exact count


class EndpointHealth:
    """Health queries over a :class:`Store`; safe from any thread."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def activity(self, subscription_id: str, hours: int, now_ms: int) -> list[dict[str, Any]]:
        """One bucket per hour, oldest first, the current hour last (zeros included)."""
        last = now_ms // HOUR_MS
        first = last - hours + 1
        rows = self.store.reader().execute(
            f"SELECT hour, successes, failures FROM hourly WHERE sub = {SUB_KEY} "
            "AND hour >= ? AND hour <= ?",
            (subscription_id, first, last),
        )
        found = {hour: (ok, failed) for hour, ok, failed in rows}
        return [
            {
                "start": rfc3339(hour * HOUR_MS),
                "successes": found.get(hour, (0, 0))[0],
                "failures": found.get(hour, (0, 0))[1],
            }
            for hour in range(first, last + 1)
        ]

    def summary(self, subscription_id: str, now_ms: int) -> dict[str, Any]:
        """Success rate and counts over the last 24 hours (by whole hours, the current one
        included), the last attempt, and the failures in a row since the last success."""
        reader = self.store.reader()
        since = now_ms // HOUR_MS - 23
        ok, failed = reader.execute(
            f"SELECT coalesce(sum(successes), 0), coalesce(sum(failures), 0) FROM hourly "
            f"WHERE sub = {SUB_KEY} AND hour >= ?",
            (subscription_id, since),
        ).fetchone()
        recent = reader.execute(
            f"SELECT webhook_id, outcome, status, started_ms FROM attempts "
            f"WHERE sub = {SUB_KEY} ORDER BY started_ms DESC, id DESC LIMIT ?",
            (subscription_id, STREAK_CAP + 20),
        ).fetchall()
        real = [r for r in recent if not r[0].startswith(TEST_PREFIX)]
        streak = 0
        for _webhook, outcome, _status, _started in real:
            if outcome == "success":
                break
            streak += 1
        last = real[0] if real else None
        total = ok + failed
        return {
            "subscription_id": subscription_id,
            "attempts_24h": total,
            "failures_24h": failed,
            "success_rate_24h": round(ok / total, 4) if total else None,
            "last_attempt_at": rfc3339(last[3]) if last else None,
            "last_status": last[2] if last else None,
            "last_outcome": last[1] if last else None,
            "consecutive_failures": min(streak, STREAK_CAP),
        }
