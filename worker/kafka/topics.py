"""Names of the worker's own topics, derived from the prefix and the retry delays."""

from __future__ import annotations

from dataclasses import dataclass

from worker.config import Settings, format_duration

__all__ = ["Topics"]


@dataclass(frozen=True, slots=True)
class Topics:
    """The worker's topic names. ``retry`` is ordered like the configured delays."""

    subscriptions: str
    deliveries: str
    retry: tuple[str, ...]
    dlq: str
    attempts: str
    invalid_events: str
    parked: str
    redrives: str
    api_tokens: str
    sources: str
    idempotency: str
    portal_links: str
    incoming_dedupe: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Topics:
        p = settings.topic_prefix
        return cls(
            subscriptions=f"{p}subscriptions",
            deliveries=f"{p}deliveries",
            # One topic per distinct delay: "1s,1s,30s" repeats retry.1s.
            retry=tuple(
                dict.fromkeys(f"{p}retry.{format_duration(d)}" for d in settings.retry_delays_ms)
            ),
            dlq=f"{p}dlq",
            attempts=f"{p}attempts",
            invalid_events=f"{p}invalid-events",
            parked=f"{p}parked",
            redrives=f"{p}redrives",
            api_tokens=f"{p}api-tokens",
            sources=f"{p}sources",
            idempotency=f"{p}idempotency",
            portal_links=f"{p}portal-links",
            incoming_dedupe=f"{p}incoming-dedupe",
        )

    def retry_topic(self, delay_ms: int) -> str:
        return f"{self.deliveries.removesuffix('deliveries')}retry.{format_duration(delay_ms)}"

    @property
    def dispatch_inputs(self) -> tuple[str, ...]:
        """What the dispatcher consumes: fresh tasks and every delay topic (co-partitioned)."""
        return (self.deliveries, *self.retry)

    @property
    def co_partitioned(self) -> tuple[str, ...]:
        """Topics keyed by subscription id that must all have the same partition count."""
        return (self.deliveries, *self.retry, self.parked, self.dlq, self.attempts)

    @property
    def compacted(self) -> tuple[str, ...]:
        """Tables keyed by id that every reader follows whole (one partition each)."""
        return (
            self.subscriptions,
            self.api_tokens,
            self.sources,
            self.idempotency,
            self.portal_links,
            self.incoming_dedupe,
        )

    def all(self) -> tuple[str, ...]:
        return (
            self.subscriptions,
            *self.co_partitioned,
            self.invalid_events,
            self.redrives,
            self.api_tokens,
            self.sources,
            self.idempotency,
            self.portal_links,
            self.incoming_dedupe,
        )
