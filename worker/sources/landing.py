"""Where verified requests land: the record's size limit and the destination topic.

A body of ``WEBHOOK_MAX_EVENT_BYTES`` becomes at most 4/3 of that in the record (base64, or
JSON-escaped UTF-8 when that is no longer), plus the kept headers and the envelope; the topic
``sources create`` makes and the intake producer both allow such a record.
"""

from __future__ import annotations

import re

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from worker.config import Settings
from worker.errors import InvalidInput
from worker.kafka.replication import ReplicationError, durability_config, replication_factor
from worker.kafka.topics import Topics

__all__ = [
    "MAX_HEADER_BYTES",
    "InvalidTopic",
    "check_topic",
    "ensure_topic",
    "record_bytes_limit",
]

MAX_HEADER_BYTES = 32 * 1024  # kept request headers, names and values together
_ENVELOPE_BYTES = 4096
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")


class InvalidTopic(InvalidInput):
    """The topic cannot take a source's requests; the message says why."""


def record_bytes_limit(max_event_bytes: int) -> int:
    """The largest record a body of ``max_event_bytes`` can make."""
    return (max_event_bytes + 2) // 3 * 4 + MAX_HEADER_BYTES * 2 + _ENVELOPE_BYTES


def check_topic(name: str, settings: Settings) -> None:
    """Refuse a malformed name, the worker's own topics and its input topics."""
    if not _TOPIC.fullmatch(name) or name in (".", ".."):
        raise InvalidTopic(
            f"invalid topic {name[:80]!r}: 1-249 characters of letters, digits and . _ -"
        )
    inputs = settings.input_topic_list()
    if inputs and inputs[0].startswith("^"):
        taken = re.match(inputs[0], name) is not None
    else:
        taken = name in inputs
    if taken:
        raise InvalidTopic(f"{name} is an input topic of the worker (WEBHOOK_INPUT_TOPICS)")
    own = Topics.from_settings(settings)
    if name in own.all() or name.startswith(settings.topic_prefix):
        raise InvalidTopic(
            f"{name} is one of the worker's own topics (prefix {settings.topic_prefix})"
        )


def ensure_topic(
    admin: AdminClient, name: str, settings: Settings, partitions: int = 3, timeout: float = 30
) -> bool:
    """Create ``name`` when it is missing (True), sized for the largest record."""
    if name in admin.list_topics(timeout=timeout).topics:
        return False
    limit = str(record_bytes_limit(settings.max_event_bytes) + 1024)
    # A webhook answered 2xx must survive a broker's loss: as many copies as our own topics.
    try:
        factor = replication_factor(admin, settings.replication_factor, timeout)
    except ReplicationError as exc:
        raise InvalidTopic(f"cannot create {name}: {exc}") from None
    config = {"max.message.bytes": limit, **durability_config(factor)}
    topic = NewTopic(name, num_partitions=partitions, replication_factor=factor, config=config)
    for _name, future in admin.create_topics([topic], request_timeout=timeout).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise InvalidTopic(f"cannot create {name}: {exc.args[0].str()}") from None
            return False
    return True
