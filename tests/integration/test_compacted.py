"""The compacted-topic follower against the real broker: reads every partition from the
beginning, says when it has caught up, keeps following, passes tombstones on, and stops."""

from __future__ import annotations

import threading
from collections.abc import Callable

from confluent_kafka.admin import NewTopic

from tests.support.kafka import produce_json
from tests.support.wait import wait_for
from worker.config import Settings
from worker.kafka.clients import make_admin, make_consumer
from worker.kafka.compacted import CompactedFollower


class Seen:
    """Last value per key, as a table keeps it, plus every call in order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[bytes | None, bytes | None]] = []

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        with self.lock:
            self.calls.append((key, value))

    def table(self) -> dict[bytes | None, bytes | None]:
        with self.lock:
            return {key: value for key, value in self.calls}


def follower(
    settings: Settings, topic: str, apply: Callable[[bytes | None, bytes | None], None]
) -> CompactedFollower:
    consumer = make_consumer(settings, None, **{"enable.partition.eof": "true"})
    return CompactedFollower(consumer, topic, apply, "test-table")


def test_reads_every_partition_then_keeps_following(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(partitions=1)
    topic = f"{settings.topic_prefix}table"
    admin = make_admin(settings)
    admin.create_topics([NewTopic(topic, 3, 1, config={"cleanup.policy": "compact"})])[
        topic
    ].result(10)
    produce_json(settings.bootstrap_servers, topic, [b"v1", b"v2"], key="a", raw=True)
    produce_json(settings.bootstrap_servers, topic, [b"w"], key="b", raw=True)
    produce_json(settings.bootstrap_servers, topic, [b"x"], key="c", raw=True)

    seen = Seen()
    table = follower(settings, topic, seen.apply)
    table.start()
    try:
        assert table.wait_caught_up(30)
        assert table.error is None
        assert seen.table() == {b"a": b"v2", b"b": b"w", b"c": b"x"}

        produce_json(settings.bootstrap_servers, topic, [None], key="b", raw=True)
        produce_json(settings.bootstrap_servers, topic, [b"y"], key="d", raw=True)
        assert wait_for(lambda: seen.table().get(b"d") == b"y", 5), "new records keep coming"
        assert wait_for(lambda: (b"b", None) in seen.calls, 5), "tombstones arrive as None"
    finally:
        table.stop()
    count = len(seen.calls)
    produce_json(settings.bootstrap_servers, topic, [b"z"], key="e", raw=True)
    assert wait_for(lambda: len(seen.calls) > count, 0.3) is False, "stopped means stopped"


def test_a_missing_topic_or_a_failing_callback_is_an_error(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(partitions=1)
    missing = follower(settings, f"{settings.topic_prefix}nope", lambda _k, _v: None)
    missing.start()
    assert missing.wait_caught_up(30) is False, "waiters wake, and are told it failed"
    assert "does not exist" in str(missing.error)
    missing.stop()

    topic = f"{settings.topic_prefix}subscriptions"
    produce_json(settings.bootstrap_servers, topic, [b"garbage"], key="k", raw=True)

    def explode(_key: bytes | None, _value: bytes | None) -> None:
        raise ValueError("cannot apply")

    broken = follower(settings, topic, explode)
    broken.start()
    assert broken.wait_caught_up(30) is False
    assert isinstance(broken.error, ValueError)
    broken.stop()
