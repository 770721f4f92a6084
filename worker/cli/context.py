"""What the CLI's commands build to work on subscriptions: the table read to its end, and
the subscription service over it (the same one the API uses)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from worker.catalogue import load_catalogue
from worker.cli.common import CommandError
from worker.components import Codecs, open_table, secret_box
from worker.config import Settings
from worker.kafka.clients import make_producer
from worker.subscriptions.challenge import ChallengeCache
from worker.subscriptions.model import Subscription
from worker.subscriptions.service import NotFound, SubscriptionService
from worker.subscriptions.store import SubscriptionWriter
from worker.subscriptions.table import TableFollower

__all__ = ["get_subscription", "load_table", "subscription_service"]

TABLE_LOAD_TIMEOUT_S = 30.0


def load_table(settings: Settings) -> TableFollower:
    """The subscription table, read to the end of its topic (stop it when done)."""
    follower = open_table(settings, Codecs.load())
    if not follower.wait_caught_up(TABLE_LOAD_TIMEOUT_S):
        follower.stop()
        raise CommandError("could not read the subscriptions topic to its end within 30s")
    return follower


@contextmanager
def subscription_service(settings: Settings) -> Iterator[SubscriptionService]:
    """The service over a freshly loaded table, writing with a producer of its own."""
    catalogue = load_catalogue(settings)
    follower = load_table(settings)
    try:
        writer = SubscriptionWriter(
            settings, make_producer(settings), Codecs.load().records, secret_box(settings)
        )
        yield SubscriptionService(
            settings,
            index=follower.table.index,
            writer=writer,
            catalogue=catalogue,
            challenges=ChallengeCache(settings.challenge_cache),
            applied=follower.wait_applied,
        )
    finally:
        follower.stop()


def get_subscription(settings: Settings, sub_id: str) -> Subscription:
    with subscription_service(settings) as service:
        try:
            return service.get(sub_id)
        except NotFound as exc:
            raise CommandError(str(exc)) from None
