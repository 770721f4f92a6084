"""What every process builds from its settings before it does anything else: the codecs of
the worker's records, the box that opens secrets at rest, and the subscription table read from
its compacted topic. The worker (:mod:`worker.app`), the API and the CLI each compose their
own process from these; none imports another's composition root."""

from __future__ import annotations

from dataclasses import dataclass

from worker.codec.avro import AvroCodec
from worker.codec.records import RecordCodec
from worker.config import Settings
from worker.kafka.clients import make_consumer
from worker.kafka.topics import Topics
from worker.subscriptions.secrets import SecretBox
from worker.subscriptions.table import SubscriptionTable, TableFollower

__all__ = ["Codecs", "open_table", "secret_box"]


@dataclass(frozen=True, slots=True)
class Codecs:
    avro: AvroCodec
    records: RecordCodec

    @classmethod
    def load(cls) -> Codecs:
        avro = AvroCodec()
        return cls(avro, RecordCodec(avro))


def secret_box(settings: Settings) -> SecretBox | None:
    return SecretBox(settings.secrets_key) if settings.secrets_key else None


def open_table(settings: Settings, codecs: Codecs) -> TableFollower:
    """Start following the subscriptions topic (call ``wait_caught_up`` before trusting it)."""
    topics = Topics.from_settings(settings)
    table = SubscriptionTable(decode=codecs.records.decode_subscription, box=secret_box(settings))
    consumer = make_consumer(settings, None, **{"enable.partition.eof": "true"})
    follower = TableFollower(consumer, topics.subscriptions, table)
    follower.start()
    return follower
