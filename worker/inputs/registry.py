"""A Confluent-compatible Schema Registry, read by schema id (``GET /schemas/ids/{id}``).

Schemas never change under an id, so a fetched one is kept for the life of the process; an
id the registry does not know is remembered for a minute, so a stream of bad records does not
become a stream of requests. A registry that cannot be reached (connection error, timeout,
5xx, 429) raises :class:`RegistryUnavailableError`: the record is not bad, the caller holds
its partition and tries again later.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
from fastavro import parse_schema

from worker.codec.events import InvalidEventError
from worker.errors import BackendError

__all__ = ["RegistryUnavailableError", "Schema", "SchemaRegistry"]

_UNKNOWN_TTL_S = 60.0
_FIRST_BACKOFF_S = 0.5
_MAX_BACKOFF_S = 30.0


class RegistryUnavailableError(BackendError):
    """The registry could not answer; the message says why in one line."""


@dataclass(frozen=True, slots=True)
class Schema:
    """A fetched schema: ``AVRO`` with its parsed form, or ``JSON`` (not enforced)."""

    id: int
    kind: str
    parsed: Any = None
    # No bytes, fixed or logical types: what fastavro reads is JSON already (no fix-up walk).
    plain: bool = True


class SchemaRegistry:
    """Fetches and caches schemas by id. ``up`` is None until the first answer."""

    def __init__(
        self,
        url: str,
        *,
        basic_auth: str | None = None,
        ca: str | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        auth = None
        if basic_auth:
            user, _, password = basic_auth.partition(":")
            auth = httpx.BasicAuth(user, password)
        self._client = httpx.Client(
            base_url=url.rstrip("/"),
            auth=auth,
            verify=ca if ca else True,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0)),
            headers={"accept": "application/vnd.schemaregistry.v1+json, application/json"},
        )
        self._schemas: dict[int, Schema] = {}
        self._unknown: dict[int, tuple[float, str]] = {}
        self.up: bool | None = None
        self.last_error = ""
        # After a failure, no request before this (monotonic): a registry that hangs costs the
        # router's loop at most one connect timeout per back-off, not one per held partition.
        self._retry_at = 0.0
        self._backoff_s = _FIRST_BACKOFF_S

    def schema(self, schema_id: int) -> Schema:
        found = self._schemas.get(schema_id)
        if found is not None:
            return found
        unknown = self._unknown.get(schema_id)
        if unknown is not None and time.monotonic() < unknown[0]:
            raise InvalidEventError(unknown[1])
        schema = self._fetch(schema_id)
        self._schemas[schema_id] = schema
        return schema

    def _fetch(self, schema_id: int) -> Schema:
        if self.up is False and time.monotonic() < self._retry_at:
            raise RegistryUnavailableError(f"schema registry unreachable: {self.last_error}")
        try:
            response = self._client.get(f"/schemas/ids/{schema_id}")
        except httpx.HTTPError as exc:
            self._down(f"{type(exc).__name__}: {exc}")
        if response.status_code >= 500 or response.status_code in (408, 429):
            self._down(f"HTTP {response.status_code}")
        self.up, self.last_error, self._backoff_s = True, "", _FIRST_BACKOFF_S
        if response.status_code == 404:
            reason = f"decode: schema id {schema_id} is not in the Schema Registry"
            self._unknown[schema_id] = (time.monotonic() + _UNKNOWN_TTL_S, reason)
            raise InvalidEventError(reason)
        if response.status_code != 200:
            # 401/403: a configuration problem, not the record's; hold and say so.
            self._down(f"HTTP {response.status_code} for schema id {schema_id}")
        try:
            body = response.json()
            return _parse(schema_id, body)
        except (ValueError, TypeError, KeyError) as exc:
            raise InvalidEventError(
                f"decode: schema id {schema_id} cannot be read: {str(exc)[:120]}"
            ) from None

    def _down(self, reason: str) -> Any:
        self.up, self.last_error = False, reason
        self._retry_at = time.monotonic() + self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, _MAX_BACKOFF_S)
        raise RegistryUnavailableError(f"schema registry unreachable: {reason}")

    def close(self) -> None:
        self._client.close()


def _parse(schema_id: int, body: dict[str, Any]) -> Schema:
    kind = body.get("schemaType") or "AVRO"
    if body.get("references"):
        raise InvalidEventError(f"decode: schema id {schema_id} has references (not supported)")
    if kind == "JSON":
        return Schema(schema_id, "JSON")
    if kind != "AVRO":
        raise InvalidEventError(f"decode: schema id {schema_id} is {kind}, not Avro or JSON")
    try:
        parsed = parse_schema(json.loads(body["schema"]))
    except Exception as exc:  # fastavro raises several types for a schema it rejects
        raise InvalidEventError(
            f"decode: schema id {schema_id} is not a valid Avro schema: {str(exc)[:120]}"
        ) from None
    text = body["schema"]
    plain = not any(word in text for word in ('"bytes"', '"fixed"', "logicalType"))
    return Schema(schema_id, "AVRO", parsed, plain)
