"""Writing subscriptions from tests through the product's own writer."""

from __future__ import annotations

from worker.components import Codecs, secret_box
from worker.config import Settings
from worker.kafka.clients import make_producer
from worker.subscriptions.model import SecretEntry, Status, Subscription
from worker.subscriptions.secrets import generate_secret
from worker.subscriptions.store import SubscriptionWriter, new_subscription_id


class SubsWriter:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.writer = SubscriptionWriter(
            settings, make_producer(settings), Codecs.load().records, secret_box(settings)
        )

    def create(
        self,
        workspace: str,
        url: str,
        events: list[str],
        *,
        ordered: bool = True,
        entity: str | None = None,
        timeout_ms: int = 5000,
        secret: str | None = None,
        ordering: str | None = None,
        max_in_flight: int | None = None,
        sub_id: str | None = None,
    ) -> Subscription:
        sub = Subscription(
            id=sub_id or new_subscription_id(),
            workspace=workspace,
            url=url,
            events=tuple(events),
            secrets=(SecretEntry(secret or generate_secret()),),
            entity=entity,
            ordered=ordered if ordering is None else ordering != "none",
            ordering=ordering,
            max_in_flight=max_in_flight,
            timeout_ms=timeout_ms,
            status=Status.ACTIVE,
        )
        self.writer.put(sub)
        return sub

    def secret(self, sub: Subscription) -> str:
        return sub.secrets[0].secret
