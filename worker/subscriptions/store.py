"""Writing subscriptions: validate, seal secrets, and produce to the compacted topic.

Everything the CLI (or any platform code) does to a subscription goes through here, so the
rules hold for every writer: URL policy, patterns, and encrypted secrets at rest.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from urllib.parse import urlsplit

from confluent_kafka import Producer

from worker.codec.records import RecordCodec
from worker.config import Settings
from worker.errors import InvalidInput
from worker.kafka.topics import Topics
from worker.kafka.writes import produce, produce_acked
from worker.outbound.destinations import DestinationPolicy, literal_address
from worker.subscriptions.model import Subscription
from worker.subscriptions.patterns import validate_pattern
from worker.subscriptions.secrets import SecretBox, seal_subscription

__all__ = ["InvalidSubscription", "SubscriptionWriter", "new_subscription_id", "validate_url"]

log = logging.getLogger(__name__)


class InvalidSubscription(InvalidInput):
    """The subscription breaks a rule; the message says which, in one line."""


def new_subscription_id() -> str:
    return "sub_" + uuid.uuid4().hex[:24]


def validate_url(url: str, settings: Settings) -> str:
    """Accept only absolute http(s) URLs allowed by the settings (HTTPS unless allowed)."""
    malformed = "This is not a valid URL. It looks like https://example.com/webhooks."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _url_error(f"malformed URL {url!r}: {exc}", malformed) from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise _url_error(f"malformed URL {url!r}: expected https://host/path", malformed)
    if _UNSAFE.search(url) or not _HOST.match(parts.hostname):
        # Caught here, not by the DNS lookup of the challenge: a space in a host name.
        raise _url_error(f"malformed URL {url!r}: spaces or invalid characters", malformed)
    if parts.scheme == "http" and not settings.allow_http:
        raise _url_error(
            f"HTTP endpoints are rejected: {url} (use https, or WEBHOOK_ALLOW_HTTP=true)",
            "Use an https:// URL.",
        )
    if parts.username or parts.password:
        raise _url_error(
            "URLs with credentials are rejected: use custom headers",
            "Remove the user name and password from the URL; send credentials in a header.",
        )
    if port == 0:
        raise _url_error(f"malformed URL {url!r}: port 0", malformed)
    host = parts.hostname
    private = "This URL points to a private or reserved network address; use a public endpoint."
    if not settings.allow_private_networks:
        if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
            raise _url_error(f"destination is not publicly routable: {host}", private)
        try:
            address = literal_address(host)  # None for a name: checked on every attempt
        except ValueError as exc:
            raise _url_error(f"malformed URL {url!r}: {exc}", malformed) from None
        if address is not None and not DestinationPolicy.from_settings(settings).permits(address):
            raise _url_error(f"destination is not publicly routable: {host}", private)
    return url


# Whitespace, controls and the characters RFC 3986 never allows unescaped in a URL.
_UNSAFE = re.compile(r'[\x00-\x20\x7f<>"{}|\\^`]')
# A host: a name (letters of any script, digits, hyphens, dots) or an IP literal.
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:.]+|[\w.-]+)$")


def _url_error(message: str, public: str) -> InvalidSubscription:
    return InvalidSubscription(message, field="url", public=public)


class SubscriptionWriter:
    """Produces subscription records (and tombstones) to the subscriptions topic."""

    def __init__(
        self,
        settings: Settings,
        producer: Producer,
        codec: RecordCodec,
        box: SecretBox | None,
    ) -> None:
        self._settings = settings
        self._producer = producer
        self._codec = codec
        self._box = box
        self._topic = Topics.from_settings(settings).subscriptions

    def check(self, sub: Subscription) -> None:
        """The rules of the record itself, for every writer; the subscription service adds
        the catalogue, header and limit rules."""
        validate_url(sub.url, self._settings)
        if not sub.events:
            raise InvalidSubscription(
                "at least one event pattern is required",
                field="events",
                public="Pick at least one event.",
            )
        for pattern in sub.events:
            try:
                validate_pattern(pattern)
            except ValueError as exc:
                raise InvalidSubscription(str(exc), field="events") from None
        if not sub.workspace.strip():
            raise InvalidSubscription("workspace is required")
        if not 1 <= sub.timeout_ms <= 30_000:
            raise InvalidSubscription(
                "timeout must be more than 0 and at most 30s", field="timeout_ms"
            )

    def put(self, sub: Subscription) -> tuple[int, int]:
        """Validate and write ``sub`` (secrets sealed when a key is configured); waits for
        the broker's acknowledgement and returns the record's (partition, offset)."""
        self.check(sub)
        value = self._codec.encode_subscription(seal_subscription(sub, self._box))
        return self._write(sub.id, value)

    def put_nowait(self, sub: Subscription) -> None:
        """Write without waiting (the worker's status changes); the caller polls the
        producer. A failed write is logged: the next failure will try again."""

        def acked(err: object, _msg: object) -> None:
            if err is not None:
                log.error("could not write subscription %s: %s", sub.id, err)

        value = self._codec.encode_subscription(seal_subscription(sub, self._box))
        produce(self._producer, self._topic, value, sub.id.encode(), acked)

    def delete(self, sub_id: str) -> tuple[int, int]:
        """Write the tombstone; returns its (partition, offset)."""
        return self._write(sub_id, None)

    def _write(self, key: str, value: bytes | None) -> tuple[int, int]:
        return produce_acked(self._producer, self._topic, value, key.encode())


def now_ms() -> int:
    return int(time.time() * 1000)
