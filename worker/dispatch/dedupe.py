"""Sending each delivery once across crashes and replays: which deliveries are settled.

A task is *redundant* when another copy of the same delivery (the same webhook-id) already
ended for good -- a 2xx, or a dead letter that is durable -- or is being attempted right now.
Such copies come from the router re-reading input it had routed but not yet committed when it
crashed, from the dispatcher re-reading its own records past the committed offset, and from a
producer writing the same event id twice. Re-driven tasks are never redundant: an operator
asked for them.

The dispatcher learns settled deliveries as they settle, and on assignment reads them back
for the last ``WEBHOOK_DEDUPE_WINDOW`` from the partition's ``attempts`` (2xx outcomes) and
``dlq`` records, both co-partitioned with ``deliveries``: a new owner after a kill -9 does
not send again what its predecessor had finished. What stays is what was in flight at the
kill: sent, but with no durable outcome.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition

from worker.codec.records import RecordCodec
from worker.dispatch.rebuild import REBUILD_TIMEOUT_S, read_to_end

__all__ = ["Settled", "read_settled"]


class Settled:
    """Delivery ids that settled within the last ``window_ms`` (0 turns deduplication off)."""

    __slots__ = ("_ids", "_order", "window_ms")

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._ids: set[str] = set()
        self._order: deque[tuple[int, str]] = deque()

    def __contains__(self, delivery_id: str) -> bool:
        return delivery_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, delivery_id: str, now_ms: int) -> None:
        if self.window_ms > 0 and delivery_id not in self._ids:
            self._ids.add(delivery_id)
            self._order.append((now_ms, delivery_id))

    def expire(self, now_ms: int) -> None:
        order, cutoff = self._order, now_ms - self.window_ms
        while order and order[0][0] < cutoff:
            self._ids.discard(order.popleft()[1])


def read_settled(
    make_reader: Callable[[], Consumer],
    attempts_topic: str,
    dlq_topic: str,
    partitions: list[int],
    since_ms: int,
    codec: RecordCodec,
) -> list[str]:
    """The delivery ids with a 2xx attempt or a dead letter written at or after ``since_ms``
    in ``partitions`` of the two topics, read to their ends."""
    if not partitions:
        return []
    reader = make_reader()
    try:
        topics = (attempts_topic, dlq_topic)
        wanted = [TopicPartition(t, p, since_ms) for t in topics for p in partitions]
        found = reader.offsets_for_times(wanted, timeout=REBUILD_TIMEOUT_S)
        starts = [tp for tp in found if tp.offset >= 0]  # -1: nothing written since
        settled: list[str] = []
        for message in read_to_end(reader, starts):
            value = message.value()
            if value is None:
                continue
            if message.topic() == dlq_topic:
                settled.append(codec.decode_dead_letter(value).task.delivery_id)
            else:
                attempt = codec.decode_attempt(value)
                if attempt.outcome == "success":
                    settled.append(attempt.delivery_id)
        return settled
    finally:
        reader.close()
