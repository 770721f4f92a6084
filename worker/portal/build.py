"""Building the portal for one API process: its keys, cookie policy, and the follower of the
``portal-links`` topic that tells every replica which links were opened."""

from __future__ import annotations

from confluent_kafka import Producer

from worker.codec.avro import AvroCodec
from worker.config import Settings
from worker.kafka.clients import make_consumer
from worker.kafka.compacted import CompactedFollower
from worker.kafka.topics import Topics
from worker.portal.gate import Portal
from worker.portal.keys import PortalKeys
from worker.portal.sessions import CookiePolicy
from worker.portal.spent import SpentLinks
from worker.tokens.registry import TokenRegistry

__all__ = ["open_portal"]


def open_portal(
    settings: Settings, producer: Producer, avro: AvroCodec, tokens: TokenRegistry
) -> tuple[Portal, CompactedFollower]:
    """The portal and its started follower (ready once ``follower.caught_up``; stop it)."""
    topic = Topics.from_settings(settings).portal_links
    spent = SpentLinks(producer, topic, avro)
    follower = CompactedFollower(
        make_consumer(settings, None, **{"enable.partition.eof": "true"}),
        topic,
        spent.apply,
        "portal-links",
    )
    follower.start()
    portal = Portal(
        settings=settings,
        keys=PortalKeys.from_settings(settings),
        cookies=CookiePolicy.from_settings(settings),
        spent=spent,
        tokens=tokens,
    )
    return portal, follower
