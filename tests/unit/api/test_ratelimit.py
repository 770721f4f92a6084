"""The per-token bucket: bursts, refill, Retry-After, and keys kept apart."""

from __future__ import annotations

from worker.api.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=10, burst=5, clock=clock)
    assert [limiter.take("a") for _ in range(5)] == [0.0] * 5
    wait = limiter.take("a")
    assert 0.09 < wait <= 0.1  # one token comes back in 1/rate seconds
    assert RateLimiter.retry_after(wait) == "1"
    clock.now += 0.1
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0


def test_tokens_do_not_share_a_bucket_and_zero_means_no_limit() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=1, clock=clock)
    assert limiter.take("a") == 0.0 and limiter.take("a") > 0
    assert limiter.take("b") == 0.0
    unlimited = RateLimiter(rate=0, burst=0, clock=clock)
    assert all(unlimited.take("a") == 0.0 for _ in range(1000))


def test_the_bucket_never_holds_more_than_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=10, burst=3, clock=clock)
    limiter.take("a")
    clock.now += 3600
    assert [limiter.take("a") == 0.0 for _ in range(4)] == [True, True, True, False]
    assert RateLimiter.retry_after(2.2) == "3"
