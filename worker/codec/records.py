"""The worker's own records <-> bytes on its topics (Avro single-object encoding).

Task encoding is on the hot path: fields are copied by hand, not via ``asdict``.
"""

from __future__ import annotations

from typing import Any

from worker.codec.avro import AvroCodec, CodecError
from worker.model import (
    Attempt,
    DeadLetter,
    DeliveryTask,
    EndpointHealth,
    InvalidRecord,
    RedriveMark,
)
from worker.subscriptions.model import Condition, SecretEntry, SigningKey, Status, Subscription

__all__ = ["CodecError", "RecordCodec"]

_TASK_FIELDS = DeliveryTask.__slots__
_ATTEMPT_FIELDS = Attempt.__slots__


def _task_dict(task: DeliveryTask) -> dict[str, Any]:
    return {name: getattr(task, name) for name in _TASK_FIELDS}


def _task(record: dict[str, Any]) -> DeliveryTask:
    return DeliveryTask(**record)


class RecordCodec:
    """Typed encode/decode of every record the worker writes."""

    def __init__(self, avro: AvroCodec) -> None:
        self.avro = avro

    # -- delivery tasks ---------------------------------------------------------------
    def encode_task(self, task: DeliveryTask) -> bytes:
        return self.avro.encode("DeliveryTask", _task_dict(task))

    def decode_task(self, data: bytes | None) -> DeliveryTask:
        return _task(self.avro.decode_as("DeliveryTask", data))

    # -- attempts -----------------------------------------------------------------------
    def encode_attempt(self, attempt: Attempt) -> bytes:
        return self.avro.encode(
            "Attempt", {name: getattr(attempt, name) for name in _ATTEMPT_FIELDS}
        )

    def decode_attempt(self, data: bytes | None) -> Attempt:
        return Attempt(**self.avro.decode_as("Attempt", data))

    # -- dead letters -------------------------------------------------------------------
    def encode_dead_letter(self, letter: DeadLetter) -> bytes:
        return self.avro.encode(
            "DeadLetter",
            {
                "task": _task_dict(letter.task),
                "reason": letter.reason,
                "attempts": letter.attempts,
                "failed_ms": letter.failed_ms,
                "last_status": letter.last_status,
                "last_error": letter.last_error,
                "last_response_body": letter.last_response_body,
            },
        )

    def decode_dead_letter(self, data: bytes | None) -> DeadLetter:
        record = self.avro.decode_as("DeadLetter", data)
        record["task"] = _task(record["task"])
        return DeadLetter(**record)

    # -- invalid input ------------------------------------------------------------------
    def encode_invalid(self, invalid: InvalidRecord) -> bytes:
        return self.avro.encode(
            "InvalidEvent",
            {name: getattr(invalid, name) for name in InvalidRecord.__slots__},
        )

    def decode_invalid(self, data: bytes | None) -> InvalidRecord:
        return InvalidRecord(**self.avro.decode_as("InvalidEvent", data))

    # -- parked ordering state ------------------------------------------------------------
    def encode_parked(self, kind: str, task: DeliveryTask) -> bytes:
        return self.avro.encode("ParkedEntry", {"kind": kind, "task": _task_dict(task)})

    def decode_parked(self, data: bytes | None) -> tuple[str, DeliveryTask]:
        record = self.avro.decode_as("ParkedEntry", data)
        return record["kind"], _task(record["task"])

    # -- progress past the committed offset (on parked) -------------------------------------
    def encode_progress(self, topic: str, ranges: list[int]) -> bytes:
        return self.avro.encode("Progress", {"topic": topic, "ranges": ranges})

    def decode_progress(self, data: bytes | None) -> tuple[str, list[int]]:
        record = self.avro.decode_as("Progress", data)
        return record["topic"], record["ranges"]

    # -- endpoint health (on parked) ---------------------------------------------------------
    def encode_health(self, health: EndpointHealth) -> bytes:
        return self.avro.encode(
            "EndpointHealth", {name: getattr(health, name) for name in EndpointHealth.__slots__}
        )

    def decode_health(self, data: bytes | None) -> EndpointHealth:
        return EndpointHealth(**self.avro.decode_as("EndpointHealth", data))

    # -- redrive checkpoints --------------------------------------------------------------
    def encode_redrive(self, mark: RedriveMark) -> bytes:
        return self.avro.encode(
            "RedriveMark", {name: getattr(mark, name) for name in RedriveMark.__slots__}
        )

    def decode_redrive(self, data: bytes | None) -> RedriveMark:
        return RedriveMark(**self.avro.decode_as("RedriveMark", data))

    # -- subscriptions ------------------------------------------------------------------
    def encode_subscription(self, sub: Subscription) -> bytes:
        return self.avro.encode(
            "Subscription",
            {
                "id": sub.id,
                "workspace": sub.workspace,
                "url": sub.url,
                "events": list(sub.events),
                "secrets": [{"secret": s.secret, "expires_ms": s.expires_ms} for s in sub.secrets],
                "name": sub.name,
                "description": sub.description,
                "entity": sub.entity,
                "conditions": [
                    {"path": c.path, "op": c.op, "values": list(c.values)} for c in sub.conditions
                ],
                "fields": list(sub.fields),
                "headers": [{"name": k, "value": v} for k, v in sub.headers],
                "timeout_ms": sub.timeout_ms,
                "rate_limit": sub.rate_limit,
                "ordered": sub.ordered,
                "ordering": sub.ordering,
                "max_in_flight": sub.max_in_flight,
                "status": sub.status.value,
                "created_ms": sub.created_ms,
                "updated_ms": sub.updated_ms,
                "status_reason": sub.status_reason,
                "changed_by": sub.changed_by,
                "signing_keys": [
                    {
                        "private_key": k.private_key,
                        "public_key": k.public_key,
                        "expires_ms": k.expires_ms,
                    }
                    for k in sub.signing_keys
                ],
                "client_cert": sub.client_cert,
                "client_key": sub.client_key,
            },
        )

    def decode_subscription(self, data: bytes | None) -> Subscription:
        r = self.avro.decode_as("Subscription", data)
        try:
            status = Status(r["status"])
        except ValueError:
            raise CodecError(f"unknown subscription status {r['status']!r}") from None
        return Subscription(
            id=r["id"],
            workspace=r["workspace"],
            url=r["url"],
            events=tuple(r["events"]),
            secrets=tuple(SecretEntry(s["secret"], s["expires_ms"]) for s in r["secrets"]),
            name=r["name"],
            description=r["description"],
            entity=r["entity"],
            conditions=tuple(
                Condition(c["path"], c["op"], tuple(c["values"])) for c in r["conditions"]
            ),
            fields=tuple(r["fields"]),
            headers=tuple((h["name"], h["value"]) for h in r["headers"]),
            timeout_ms=r["timeout_ms"],
            rate_limit=r["rate_limit"],
            ordered=r["ordered"],
            ordering=r["ordering"],
            max_in_flight=r["max_in_flight"],
            status=status,
            created_ms=r["created_ms"],
            updated_ms=r["updated_ms"],
            status_reason=r["status_reason"],
            changed_by=r["changed_by"],
            signing_keys=tuple(
                SigningKey(k["private_key"], k["public_key"], k["expires_ms"])
                for k in r["signing_keys"]
            ),
            client_cert=r["client_cert"],
            client_key=r["client_key"],
        )
