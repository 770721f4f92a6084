"""The package's exceptions share one root, :class:`WebhookWorkerError`, so a caller (the CLI
first) can catch everything raised on purpose in one place; each also keeps the built-in
base its callers relied on (``ValueError``, ``LookupError``, ``RuntimeError``).

The tree (defined next to the code that raises each, listed here)::

    WebhookWorkerError
    ├── InvalidInput (ValueError): input refused by a rule; the message says which
    │   ├── ConfigError                  a setting (worker.config)
    │   ├── InvalidSubscription          a subscription (worker.subscriptions.store)
    │   ├── InvalidHeader                a custom header (worker.outbound.headers)
    │   ├── InvalidCertificate           a client certificate (worker.outbound.tls)
    │   ├── CatalogueError               the event-type catalogue (worker.catalogue)
    │   ├── NotSubscribed                test-fire of a type not subscribed to
    │   ├── InvalidToken                 a token request (worker.tokens.writer)
    │   ├── InvalidSource, InvalidTopic  an incoming-webhook source (worker.sources)
    │   ├── InvalidEventError            an input event (worker.codec.events)
    │   ├── SpecError, SourceError       the input-mapping file (worker.inputs.options)
    │   ├── CodecError                   a record that does not decode (worker.codec.avro)
    │   ├── BadCursor                    a list cursor (worker.deliverylog.cursor)
    │   ├── IdempotencyMismatch          an Idempotency-Key reused with another body
    │   └── Refused                      an incoming webhook that fails verification
    ├── NotFoundError (LookupError): no such thing, or another workspace's
    │   └── NotFound, SourceNotFound, UnknownToken
    ├── ConflictError: the current state does not allow it
    │   └── Conflict (LimitReached), IdempotencyConflict
    ├── DeliveryFailed: an outgoing request did not get a usable answer
    │   └── TransportError (worker.outbound.client), ChallengeFailed
    ├── BackendError (RuntimeError): Kafka, a table or a local store failed
    │   └── TopicsError, ReplicationError, AccessError, DevBrokerError, KafkaBrokerError,
    │       KafkaJarsError, ScanError, TableError, TokenRegistryError,
    │       SourceTableError, LogError, RebuildError, WriteFailed, SpentUnknown,
    │       RecoveryFailed, StageFailedError, RegistryUnavailableError,
    │       SecretsError (wrong or missing WEBHOOK_SECRETS_KEY)
    └── CommandError: a command failed (worker.cli.common), with its exit status

Not in the tree, on purpose: :class:`worker.api.problems.Problem` and its ``BodyTooLarge``
(HTTP answers, not errors of the package), the socket-level signals the delivery client
raises and catches itself (``BlockedDestination``, ``ProxyError``, ``ConnectionClosed``:
``OSError`` family, as asyncio's transports expect), and the input decoder's signals to the
router (``SkippedError``: not an event, move on; ``PartitionHeldError``: wait for the
Schema Registry), which never leave it.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "ConflictError",
    "DeliveryFailed",
    "InvalidInput",
    "NotFoundError",
    "WebhookWorkerError",
]


class WebhookWorkerError(Exception):
    """The root: every error the package raises on purpose."""


class InvalidInput(WebhookWorkerError, ValueError):
    """Input refused by a rule; the message says which, in one line.

    ``field`` names the input it is about (``url``, ``events``...) and ``public`` says it in
    words for an end user (no exception text, no command to run): the API puts both in the
    problem document's ``errors``, and the portal shows them next to the field."""

    def __init__(self, *args: object, field: str | None = None, public: str | None = None):
        super().__init__(*args)
        self.field = field
        self.public = public


class NotFoundError(WebhookWorkerError, LookupError):
    """No such thing (or, to a workspace, another workspace's: the two look the same)."""


class ConflictError(WebhookWorkerError):
    """The current state does not allow the change; ``public`` says so in words for an end
    user (no setting names), when the message would not."""

    def __init__(self, *args: object, public: str | None = None):
        super().__init__(*args)
        self.public = public


class DeliveryFailed(WebhookWorkerError):
    """An outgoing request (delivery, challenge, test-fire) got no usable answer;
    ``public`` says what happened in words for an end user, when known."""

    def __init__(self, *args: object, public: str | None = None):
        super().__init__(*args)
        self.public = public


class BackendError(WebhookWorkerError, RuntimeError):
    """Kafka, a followed table or a local store failed."""
