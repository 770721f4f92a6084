"""Consumer lag per assigned partition, from the consumer's own view (no extra requests):
the high watermark of the last fetch minus the position. Clamped at zero (Tansu can report a
high watermark below the real end)."""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaException

from worker.observability.metrics import Metrics

__all__ = ["LagReporter"]


class LagReporter:
    def __init__(self, consumer: Consumer, group: str, metrics: Metrics) -> None:
        self._consumer = consumer
        self._group = group
        self._metrics = metrics
        self._known: set[tuple[str, int]] = set()

    def report(self) -> None:
        try:
            assigned = self._consumer.assignment()
            positions = self._consumer.position(assigned) if assigned else []
        except KafkaException:
            return
        seen: set[tuple[str, int]] = set()
        for tp in positions:
            topic, partition = tp.topic, tp.partition
            try:
                low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue
            if high is None or high < 0:
                continue
            position = tp.offset if tp.offset >= 0 else low
            self._metrics.consumer_lag(self._group, topic, partition, max(0, high - position))
            seen.add((topic, partition))
        for topic, partition in self._known - seen:
            self._metrics.forget_partition(self._group, topic, partition)
        self._known = seen
