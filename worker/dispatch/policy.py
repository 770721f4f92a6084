"""What happens after an attempt: pure functions, no I/O (tested without a broker).

2xx is success. A network error, a timeout, 408, 429 and 5xx are retried through the delay
topics, honouring ``Retry-After`` as a lower bound; other statuses (4xx, and 3xx because
redirects are never followed) dead-letter at once. 410 Gone also asks for the endpoint to be
disabled (Standard Webhooks).
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Next", "Verdict", "classify", "parse_retry_after", "schedule_retry"]

RETRYABLE_STATUSES = frozenset({408, 429})
MAX_RETRY_AFTER_MS = 24 * 3_600_000


class Next(StrEnum):
    SUCCESS = "success"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True, slots=True)
class Verdict:
    next: Next
    reason: str  # dead-letter reason, or why a retry happens
    disable_endpoint: bool = False


def classify(status: int | None, error_kind: str | None) -> Verdict:
    """Decide from an HTTP status, or from a transport error kind when there is no status.

    ``error_kind`` is one of ``timeout``, ``network`` (retryable), ``blocked`` (the
    destination is not allowed: permanent) or ``invalid`` (the request cannot be sent, e.g. a
    stored header with a line break: permanent).
    """
    if status is None:
        if error_kind == "blocked":
            return Verdict(Next.DEAD_LETTER, "destination_blocked")
        if error_kind == "invalid":  # a URL or header that cannot be sent: never will be
            return Verdict(Next.DEAD_LETTER, "invalid_request")
        return Verdict(Next.RETRY, error_kind or "network")
    if 200 <= status < 300:
        return Verdict(Next.SUCCESS, "ok")
    if status in RETRYABLE_STATUSES or status >= 500:
        return Verdict(Next.RETRY, f"http_{status}")
    if status == 410:
        return Verdict(Next.DEAD_LETTER, "gone", disable_endpoint=True)
    if 300 <= status < 400:
        return Verdict(Next.DEAD_LETTER, "redirect")
    return Verdict(Next.DEAD_LETTER, "client_error")


@dataclass(frozen=True, slots=True)
class RetryPlan:
    delay_ms: int  # the configured delay whose topic receives the task
    due_ms: int


def schedule_retry(
    attempts_made: int, delays_ms: tuple[int, ...], now_ms: int, retry_after_ms: int | None
) -> RetryPlan | None:
    """Where and when the next attempt goes, or None when the attempts are used up.

    After attempt n (1-based) the n-th delay applies. A longer ``Retry-After`` moves the task
    to the first delay topic at least that long (so each delay topic stays roughly in due
    order) and sets its due time; it never shortens a delay.
    """
    if attempts_made < 1 or attempts_made > len(delays_ms):
        return None
    index = attempts_made - 1
    wait = delays_ms[index]
    if retry_after_ms is not None and retry_after_ms > wait:
        wait = min(retry_after_ms, MAX_RETRY_AFTER_MS)
        index = next((i for i, d in enumerate(delays_ms) if d >= wait), len(delays_ms) - 1)
        index = max(index, attempts_made - 1)
    return RetryPlan(delay_ms=delays_ms[index], due_ms=now_ms + wait)


def parse_retry_after(value: str | None, now_ms: int) -> int | None:
    """``Retry-After`` as milliseconds from now: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value) * 1000
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0, int(when.timestamp() * 1000) - now_ms)
