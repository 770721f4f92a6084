"""The router's one call: a consumed record in, an event (or nothing) out.

Decode (bytes to a value), map (the topic's format to our envelope), then validate it as the
envelope a producer would have written. A topic without a mapping is decoded exactly as
before ``WEBHOOK_INPUTS`` existed.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition

from worker.codec.avro import AvroCodec
from worker.codec.events import InvalidEventError, decode_event, record_time, validate_envelope
from worker.inputs.converters import decode_bytes, decode_key
from worker.inputs.formats import SkippedError
from worker.inputs.holds import PartitionHolds
from worker.inputs.record import InputRecord
from worker.inputs.registry import RegistryUnavailableError, SchemaRegistry
from worker.inputs.sources import Source
from worker.inputs.spec import InputSpec, Mapping
from worker.kafka.offsets import position
from worker.model import Event
from worker.observability.metrics import Metrics

__all__ = ["InputDecoder", "PartitionHeldError"]


# A mapping's workspace, entity and ordering-key sources, the ones it sets.
Overrides = tuple[tuple[str, Source], ...]


class PartitionHeldError(Exception):
    """The record was not read: its partition waits for the Schema Registry."""


class InputDecoder:
    """Decodes and maps input records by their topic's mapping. Built by :mod:`worker.app`."""

    def __init__(
        self,
        *,
        avro: AvroCodec,
        max_bytes: int,
        spec: InputSpec | None = None,
        registry: SchemaRegistry | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._avro = avro
        self._max_bytes = max_bytes
        self._spec = spec
        self._registry = registry
        self._metrics = metrics
        self.holds = PartitionHolds()
        self._by_topic: dict[str, tuple[Mapping | None, Overrides]] = {}

    @property
    def spec(self) -> InputSpec | None:
        return self._spec

    # -- the router's calls --------------------------------------------------------------

    def decode(self, message: Message, consumer: Consumer | None = None) -> Event | None:
        """The event of ``message``; None for an error event or a skipped record (a
        tombstone). Raises InvalidEventError for a bad record and PartitionHeldError when
        the partition now waits for the registry (the record was not read)."""
        if message.error() is not None:
            return None
        topic, partition, offset = position(message)
        holds = self.holds
        if holds.held and holds.skips(topic, partition, offset):
            raise PartitionHeldError(topic)
        _, timestamp_ms = message.timestamp()
        if timestamp_ms <= 0:
            timestamp_ms = int(time.time() * 1000)
        found = self._by_topic.get(topic)
        if found is None:
            found = self._by_topic[topic] = self._lookup(topic)
        mapping, overrides = found
        if mapping is None:  # an envelope topic, as always
            return decode_event(
                message.value(),
                topic=topic,
                partition=partition,
                offset=offset,
                timestamp_ms=timestamp_ms,
                max_bytes=self._max_bytes,
                avro=self._avro,
            )
        record = InputRecord(
            topic, partition, offset, timestamp_ms, message.key(), message.headers()
        )
        try:
            event = self._mapped(mapping, overrides, record, message.value())
        except SkippedError:
            event = None
        except RegistryUnavailableError:
            holds.hold(consumer, topic, partition, offset)
            self._report()
            raise PartitionHeldError(topic) from None
        except InvalidEventError:
            if holds.held:
                self._release(topic, partition, offset)
            raise
        if holds.held:
            self._release(topic, partition, offset)
        return event

    def _lookup(self, topic: str) -> tuple[Mapping | None, Overrides]:
        mapping = self._spec.mapping_for(topic) if self._spec is not None else None
        if mapping is None:
            return None, ()
        return mapping, tuple(
            (name, source)
            for name in ("workspace", "entity", "ordering_key")
            if (source := getattr(mapping, name)) is not None
        )

    def _release(self, topic: str, partition: int, offset: int) -> None:
        """The record was read, good or bad: its partition's hold is over."""
        self.holds.read(topic, partition, offset)
        self._report()

    def held(self, topic: str, partition: int) -> bool:
        """The partition is paused until the registry answers (its hold resumes it)."""
        return (topic, partition) in self.holds.held

    def resume_due(self, consumer: Consumer) -> None:
        if self.holds.held:
            self.holds.resume_due(consumer)

    def drop(self, partitions: list[TopicPartition]) -> None:
        self.holds.drop(partitions)
        self._report()

    def close(self) -> None:
        """Closes the registry client's connections (a registry keeps them alive)."""
        if self._registry is not None:
            self._registry.close()

    def health(self) -> tuple[bool, str]:
        """For ``/readyz``: not ready while the registry cannot be reached."""
        if self._registry is not None and self._registry.up is False:
            return False, f"schema registry unreachable: {self._registry.last_error}"
        return True, "ok"

    # -- decode and map ------------------------------------------------------------------

    def read(self, record: InputRecord, value: bytes | None) -> Event | None:
        """The event of one record (None: skipped); also used by ``inputs check``."""
        try:
            return self.explain(record, value)[1]
        except SkippedError:
            return None

    def explain(self, record: InputRecord, value: bytes | None) -> tuple[Mapping | None, Event]:
        """Like :meth:`read` but raises SkippedError instead of answering None."""
        mapping, overrides = self._lookup(record.topic)
        if mapping is None:
            event = decode_event(
                value,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                timestamp_ms=record.timestamp_ms,
                max_bytes=self._max_bytes,
                avro=self._avro,
            )
            return None, event
        return mapping, self._mapped(mapping, overrides, record, value)

    def _mapped(
        self, mapping: Mapping, overrides: Overrides, record: InputRecord, value: bytes | None
    ) -> Event:
        fmt = mapping.format
        if not value:
            if fmt.empty == "skip":
                raise SkippedError("tombstone (no value)")
            if fmt.empty == "invalid":
                raise InvalidEventError("empty record: no value")
        elif len(value) > self._max_bytes:
            raise InvalidEventError(
                f"too_large: event is {len(value)} bytes, above the limit of {self._max_bytes}"
            )
        else:
            record.value = decode_bytes(value, self._registry, self._avro, payload=fmt.payload)
        envelope, root = fmt.map(record, self._key)
        for name, source in overrides:
            found = source.text(record, root, self._key)
            if found is not None:
                envelope[name] = found
            elif name == "workspace":
                raise InvalidEventError(f"validation: no workspace at {source}")
        stamp = envelope.get("timestamp")
        event_ms = None
        if type(stamp) is int:  # Unix milliseconds from the format (Debezium's ts_ms)
            event_ms = stamp
            envelope["timestamp"] = record_time(stamp)
        return validate_envelope(
            envelope,
            record.topic,
            record.partition,
            record.offset,
            record.timestamp_ms,
            event_ms,
            typed=fmt.typed,
        )

    def _key(self, record: InputRecord) -> Any:
        """The record's key, decoded once (a format and a ``key:`` source may both read it)."""
        if record.key_decoded:
            return record.decoded_key
        try:
            decoded = decode_key(record.key, self._registry)
        except InvalidEventError as exc:
            raise InvalidEventError(f"{exc} (the key)") from None
        record.decoded_key = decoded
        return decoded

    def _report(self) -> None:
        if self._metrics is not None:
            up = self._registry is None or self._registry.up is not False
            self._metrics.schema_registry(up, len(self.holds))
