"""Settings: one frozen object, read from the environment once at start-up.

Every variable is documented in docs/configuration.md (a test checks both ways). Nothing
else in the package reads ``os.environ``; code receives a :class:`Settings` and asks it.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlsplit

from worker.errors import InvalidInput

__all__ = [
    "DEFAULT_RETRY_DELAYS",
    "ConfigError",
    "Network",
    "Settings",
    "format_duration",
    "parse_dns_servers",
    "parse_duration",
    "parse_networks",
    "parse_proxy",
    "tracing_exporter",
]

DEFAULT_RETRY_DELAYS = "5s,30s,2m,10m,30m,1h,2h"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
# Variables of ours that start with KAFKA_ but are not librdkafka properties.
_NOT_LIBRDKAFKA = {"KAFKA_BOOTSTRAP_SERVERS"}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(InvalidInput):
    """A setting is malformed; the message names the variable and the bad value."""


def parse_duration(text: str) -> int:
    """``"30s"`` -> 30000: a duration in milliseconds (units ms, s, m, h, d)."""
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(f"not a duration: {text!r} (use e.g. 500ms, 30s, 5m, 2h, 1d)")
    return int(float(match.group(1)) * _UNIT_MS[match.group(2)])


def format_duration(ms: int) -> str:
    """30000 -> ``"30s"``: the shortest exact spelling, used in retry topic names."""
    for unit in ("d", "h", "m", "s"):
        if ms % _UNIT_MS[unit] == 0 and ms >= _UNIT_MS[unit]:
            return f"{ms // _UNIT_MS[unit]}{unit}"
    return f"{ms}ms"


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name}: expected true or false, got {value!r}")


def _float(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {value!r}") from None
    if not number >= 0:
        raise ConfigError(f"{name}: must be at least 0, got {value!r}")
    return number


def _int(name: str, value: str, minimum: int = 0) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}: expected an integer, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}, got {number}")
    return number


def _duration_var(name: str, value: str) -> int:
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from None


Parse = Callable[[str, str], Any]  # (variable, value) -> setting; ConfigError names the variable


def _text(_name: str, value: str) -> str:
    return value


def _mib(name: str, value: str) -> int:
    return _int(name, value, minimum=1) * 1024 * 1024


def _csv(_name: str, value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _named(parse: Callable[[str], Any]) -> Parse:
    """A parser whose errors already name its variable."""
    return lambda _name, value: parse(value)


def var(name: str, default: Any, parse: Parse = _text, *, secret: bool = False) -> Any:
    """A setting read from the environment variable ``name`` (when set and not empty; a
    boolean also when empty): each setting is declared once, here, as a field of
    :class:`Settings`; docs/configuration.md documents each (a test checks both ways)."""
    return field(default=default, repr=not secret, metadata={"env": name, "parse": parse})


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the worker and the CLI are configured with."""

    bootstrap_servers: str | None = var("KAFKA_BOOTSTRAP_SERVERS", None)
    # Every other KAFKA_<PROPERTY>, as librdkafka properties.
    kafka_properties: Mapping[str, str] = field(default_factory=dict, repr=False)
    input_topics: str = var("WEBHOOK_INPUT_TOPICS", "events")
    topic_prefix: str = var("WEBHOOK_TOPIC_PREFIX", "webhooks.")
    group_id: str = var("WEBHOOK_GROUP_ID", "webhook-worker")
    metrics_port: int = var("WEBHOOK_METRICS_PORT", 9400, _int)
    retry_delays_ms: tuple[int, ...] = var(
        "WEBHOOK_RETRY_DELAYS",
        tuple(parse_duration(d) for d in DEFAULT_RETRY_DELAYS.split(",")),
        _named(lambda v: parse_retry_delays(v)),
    )
    allow_http: bool = var("WEBHOOK_ALLOW_HTTP", False, _bool)
    allow_private_networks: bool = var("WEBHOOK_ALLOW_PRIVATE_NETWORKS", False, _bool)
    allowed_networks: tuple[Network, ...] = var(
        "WEBHOOK_ALLOWED_NETWORKS", (), _named(lambda v: parse_networks(v))
    )
    dns_servers: tuple[str, ...] = var(
        "WEBHOOK_DNS_SERVERS", (), _named(lambda v: parse_dns_servers(v))
    )
    # may carry a password
    egress_proxy: str | None = var(
        "WEBHOOK_EGRESS_PROXY", None, _named(lambda v: parse_proxy(v)), secret=True
    )
    ca_bundle: str | None = var("WEBHOOK_CA_BUNDLE", None)
    client_cert: str | None = var("WEBHOOK_CLIENT_CERT", None)
    client_key: str | None = var("WEBHOOK_CLIENT_KEY", None)
    secrets_key: str | None = var("WEBHOOK_SECRETS_KEY", None, secret=True)
    max_event_bytes: int = var("WEBHOOK_MAX_EVENT_BYTES", 1_000_000, _int)
    # Copies of every topic we create; None: the cluster's default.replication.factor.
    replication_factor: int | None = var(
        "WEBHOOK_REPLICATION_FACTOR", None, lambda name, value: _int(name, value, minimum=1)
    )
    shutdown_timeout_ms: int = var("WEBHOOK_SHUTDOWN_TIMEOUT", 30_000, _duration_var)
    max_in_flight: int = var("WEBHOOK_MAX_IN_FLIGHT", 512, _int)
    max_in_flight_per_workspace: int = var("WEBHOOK_MAX_IN_FLIGHT_PER_WORKSPACE", 50, _int)
    # Tasks read from ``deliveries`` but not yet started, estimated in memory (dispatcher).
    read_ahead_bytes: int = var("WEBHOOK_READ_AHEAD_MB", 64 * 1024 * 1024, _mib)
    default_timeout_ms: int = var("WEBHOOK_DEFAULT_TIMEOUT", 15_000, _duration_var)
    max_endpoints_per_workspace: int = var("WEBHOOK_MAX_ENDPOINTS_PER_WORKSPACE", 0, _int)
    disable_after_failures: int = var("WEBHOOK_DISABLE_AFTER_FAILURES", 20, _int)
    disable_after_ms: int = var("WEBHOOK_DISABLE_AFTER", 5 * 86_400_000, _duration_var)
    dedupe_window_ms: int = var("WEBHOOK_DEDUPE_WINDOW", 120_000, _duration_var)
    event_loop: str = var("WEBHOOK_EVENT_LOOP", "uvloop")
    challenge_cache: str = var("WEBHOOK_CHALLENGE_CACHE", "~/.cache/webhook-worker/challenges.json")
    demo_secret: str | None = var("WEBHOOK_DEMO_SECRET", None, secret=True)
    # Path of the event-type catalogue (JSON); None: no catalogue, any pattern accepted.
    event_types: str | None = var("WEBHOOK_EVENT_TYPES", None)
    # Input formats: the mapping file (docs/usage.md, "Input formats") and the Schema
    # Registry that framed values are read with.
    inputs: str | None = var("WEBHOOK_INPUTS", None)
    schema_registry_url: str | None = var("WEBHOOK_SCHEMA_REGISTRY_URL", None)
    schema_registry_basic_auth: str | None = var(
        "WEBHOOK_SCHEMA_REGISTRY_BASIC_AUTH", None, secret=True
    )
    schema_registry_ca: str | None = var("WEBHOOK_SCHEMA_REGISTRY_CA", None)
    # ``api``'s rebuildable index of attempts and dead letters, and how long it keeps them.
    api_data_dir: str = var("WEBHOOK_API_DATA_DIR", "~/.cache/webhook-worker/api")
    api_log_retention_ms: int = var("WEBHOOK_API_LOG_RETENTION", 30 * 86_400_000, _duration_var)
    # ``api``: its port, public base URL, and abuse limits.
    api_port: int = var("WEBHOOK_API_PORT", 8088, _int)
    public_url: str | None = var("WEBHOOK_PUBLIC_URL", None)
    api_max_body_bytes: int = var("WEBHOOK_API_MAX_BODY_BYTES", 256 * 1024, _int)
    api_rate_limit: float = var("WEBHOOK_API_RATE_LIMIT", 20.0, _float)  # per token; 0: none
    api_rate_burst: int = var("WEBHOOK_API_RATE_BURST", 100, _int)
    api_cors_origins: tuple[str, ...] = var("WEBHOOK_API_CORS_ORIGINS", (), _csv)
    # The portal: link and session signing key, idle limit, framing and theme.
    portal_key: str | None = var("WEBHOOK_PORTAL_KEY", None, secret=True)
    portal_idle_ms: int = var("WEBHOOK_PORTAL_IDLE", 3_600_000, _duration_var)
    portal_frame_ancestors: str = var("WEBHOOK_PORTAL_FRAME_ANCESTORS", "'self'")
    portal_brand_color: str = var("WEBHOOK_PORTAL_BRAND_COLOR", "#2f5bea")
    portal_logo_url: str | None = var("WEBHOOK_PORTAL_LOGO_URL", None)
    # Incoming webhooks (``POST /in/{source}``): how long a webhook-id is remembered, the
    # per-source request rate (0: none), and a test-only pause (``claimed`` or ``recorded``)
    # that holds a request at that step so a test can kill the process there.
    incoming_dedupe_window_ms: int = var("WEBHOOK_INCOMING_DEDUPE_WINDOW", 600_000, _duration_var)
    incoming_rate_limit: float = var("WEBHOOK_INCOMING_RATE_LIMIT", 1000.0, _float)
    incoming_test_pause: str | None = var("WEBHOOK_INCOMING_TEST_PAUSE", None)
    # Tracing (docs/tracing.md): the attempt's traceparent on outgoing POSTs; and which span
    # exporter the OpenTelemetry variables ask for (None: tracing off), with the batch queue's
    # bound. The SDK reads the rest of its standard OTEL_* variables itself.
    trace_propagate: bool = var("WEBHOOK_TRACE_PROPAGATE", False, _bool)
    tracing: str | None = None
    trace_queue_size: int = 2048
    trace_batch_size: int = 512

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``env`` (default ``os.environ``); ``overrides`` win (CLI flags)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for setting in fields(cls):
            name = setting.metadata.get("env")
            if name is None:
                continue
            parse: Parse = setting.metadata["parse"]
            if env.get(name) or (parse is _bool and name in env):
                values[setting.name] = parse(name, env[name])
        values["kafka_properties"] = {
            key[len("KAFKA_") :].lower().replace("_", "."): value
            for key, value in env.items()
            if key.startswith("KAFKA_") and key not in _NOT_LIBRDKAFKA
        }
        values["tracing"] = tracing_exporter(env)
        if env.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"):
            values["trace_batch_size"] = _int(
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", env["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"], 1
            )
        if env.get("OTEL_BSP_MAX_QUEUE_SIZE"):
            values["trace_queue_size"] = _int(
                "OTEL_BSP_MAX_QUEUE_SIZE", env["OTEL_BSP_MAX_QUEUE_SIZE"], 1
            )
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def with_overrides(self, **overrides: Any) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def validate(self) -> None:
        if not self.retry_delays_ms:
            raise ConfigError("WEBHOOK_RETRY_DELAYS: at least one delay is required")
        if not self.input_topics.strip():
            raise ConfigError("WEBHOOK_INPUT_TOPICS: empty")
        if self.event_loop not in ("uvloop", "asyncio"):
            raise ConfigError(
                f"WEBHOOK_EVENT_LOOP: expected uvloop or asyncio, got {self.event_loop!r}"
            )
        self._validate_api()
        self._validate_portal()
        if self.client_key and not self.client_cert:
            raise ConfigError("WEBHOOK_CLIENT_KEY: set WEBHOOK_CLIENT_CERT too")
        if self.read_ahead_bytes <= 0:
            raise ConfigError("read_ahead_bytes: must be positive")
        if self.schema_registry_url is not None and not re.match(
            r"^https?://[^/\s]+(/\S*)?$", self.schema_registry_url
        ):
            raise ConfigError(
                "WEBHOOK_SCHEMA_REGISTRY_URL: expected http(s)://host[:port][/path], got "
                f"{self.schema_registry_url!r}"
            )
        if self.schema_registry_basic_auth is not None and ":" not in (
            self.schema_registry_basic_auth
        ):
            raise ConfigError("WEBHOOK_SCHEMA_REGISTRY_BASIC_AUTH: expected user:password")
        if self.input_topics.startswith("^"):
            try:
                re.compile(self.input_topics)
            except re.error as exc:
                raise ConfigError(f"WEBHOOK_INPUT_TOPICS: bad regular expression: {exc}") from None

    def _validate_api(self) -> None:
        if self.api_log_retention_ms <= 0:
            raise ConfigError("WEBHOOK_API_LOG_RETENTION: must be positive")
        if self.public_url is not None and not re.match(
            r"^https?://[^/\s]+(/\S*)?$", self.public_url
        ):
            raise ConfigError(
                f"WEBHOOK_PUBLIC_URL: expected https://host[/path], got {self.public_url!r}"
            )
        if not 0 < self.api_port < 65536 and self.api_port != 0:
            raise ConfigError(f"WEBHOOK_API_PORT: not a port: {self.api_port}")
        if self.incoming_dedupe_window_ms < 300_000:
            raise ConfigError(
                "WEBHOOK_INCOMING_DEDUPE_WINDOW: at least 5m (the signature timestamp tolerance)"
            )
        if self.incoming_test_pause not in (None, "claimed", "recorded"):
            raise ConfigError("WEBHOOK_INCOMING_TEST_PAUSE: claimed or recorded (tests only)")

    def _validate_portal(self) -> None:
        if self.portal_idle_ms <= 0:
            raise ConfigError("WEBHOOK_PORTAL_IDLE: must be positive")
        if not re.match(r"^#[0-9A-Fa-f]{3}([0-9A-Fa-f]{3})?$", self.portal_brand_color):
            raise ConfigError(
                f"WEBHOOK_PORTAL_BRAND_COLOR: expected #rgb or #rrggbb, got "
                f"{self.portal_brand_color!r}"
            )
        if self.portal_logo_url is not None and not re.match(
            r"^(https?://[^/\s\"'<>]+)?/[^\s\"'<>]*$", self.portal_logo_url
        ):
            raise ConfigError(
                f"WEBHOOK_PORTAL_LOGO_URL: expected https://host/path or /path, got "
                f"{self.portal_logo_url!r}"
            )
        if not re.match(r"^[A-Za-z0-9'*:/._ -]+$", self.portal_frame_ancestors):
            raise ConfigError(
                "WEBHOOK_PORTAL_FRAME_ANCESTORS: expected CSP sources like "
                f"'self' https://app.example.com, got {self.portal_frame_ancestors!r}"
            )
        if self.portal_key is not None and len(self.portal_key) < 32:
            raise ConfigError("WEBHOOK_PORTAL_KEY: use at least 32 characters")

    @property
    def max_attempts(self) -> int:
        """Attempts per delivery: one first try plus one per retry delay."""
        return len(self.retry_delays_ms) + 1

    def input_topic_list(self) -> list[str]:
        """Topic names, or a single ``^regex`` (librdkafka subscribes to regexes natively)."""
        if self.input_topics.startswith("^"):
            return [self.input_topics]
        return [t.strip() for t in self.input_topics.split(",") if t.strip()]

    def to_librdkafka(self) -> dict[str, str]:
        """Client properties shared by every producer, consumer and admin client."""
        if not self.bootstrap_servers:
            raise ConfigError(
                "KAFKA_BOOTSTRAP_SERVERS is not set (use `webhook-worker dev` for a local broker)"
            )
        config = {"bootstrap.servers": self.bootstrap_servers}
        config.update(self.kafka_properties)
        return config


def tracing_exporter(env: Mapping[str, str]) -> str | None:
    """``otlp`` or ``console`` when the OpenTelemetry variables switch tracing on, else None:
    on when ``OTEL_TRACES_EXPORTER`` names an exporter or an OTLP endpoint is set, off with
    ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` (docs/tracing.md)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return None
    if not exporter:
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        if not endpoint:
            return None
        exporter = "otlp"
    if exporter not in ("otlp", "console"):
        raise ConfigError(f"OTEL_TRACES_EXPORTER: otlp, console or none, got {exporter!r}")
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    if exporter == "otlp" and protocol.strip() != "http/protobuf":
        raise ConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL: only http/protobuf is installed, got {protocol!r}"
        )
    return exporter


def parse_retry_delays(text: str) -> tuple[int, ...]:
    """``"1s,30s"`` -> ``(1000, 30000)``; errors name ``WEBHOOK_RETRY_DELAYS``."""
    try:
        delays = tuple(parse_duration(part) for part in text.split(",") if part.strip())
    except ConfigError as exc:
        raise ConfigError(f"WEBHOOK_RETRY_DELAYS: {exc}") from None
    if not delays:
        raise ConfigError("WEBHOOK_RETRY_DELAYS: at least one delay is required")
    return delays


def parse_networks(text: str) -> tuple[Network, ...]:
    """``"127.0.0.1/32,10.1.0.0/16"`` -> networks; errors name ``WEBHOOK_ALLOWED_NETWORKS``."""
    networks = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part))
        except ValueError as exc:
            raise ConfigError(f"WEBHOOK_ALLOWED_NETWORKS: not a CIDR: {part!r} ({exc})") from None
    return tuple(networks)


def parse_dns_servers(text: str) -> tuple[str, ...]:
    """``"127.0.0.1:5353,[::1]:53"`` -> the servers; each must be an IP with optional port."""
    servers = tuple(p.strip() for p in text.split(",") if p.strip())
    for server in servers:
        host, port = server, "53"
        if server.startswith("[") and "]:" in server:
            host, port = server[1:].split("]:", 1)
        elif server.count(":") == 1:
            host, port = server.split(":")
        try:
            ipaddress.ip_address(host.strip("[]"))
            if not 0 < int(port) < 65536:
                raise ValueError(port)
        except ValueError:
            raise ConfigError(
                f"WEBHOOK_DNS_SERVERS: expected IP[:port] (e.g. 10.0.0.2:53), got {server!r}"
            ) from None
    return servers


def parse_proxy(text: str) -> str:
    """``http://[user:password@]host:port`` of a forward proxy, as given; errors name
    ``WEBHOOK_EGRESS_PROXY``."""
    parts = urlsplit(text.strip())
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ConfigError(
            f"WEBHOOK_EGRESS_PROXY: expected http://host:port (e.g. http://10.0.0.3:3128), got "
            f"{parts.scheme or 'no scheme'}://{parts.hostname or ''}..."
        )
    return text.strip()
