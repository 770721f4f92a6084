"""Settings: one frozen object, read from the environment once at start-up.

Every variable is documented in docs/configuration.md (a test checks both ways). Nothing
else in the package reads ``os.environ``; code receives a :class:`Settings` and asks it.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
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


def _megabytes(env: Mapping[str, str], names: Mapping[str, str]) -> dict[str, int]:
    """Whole MiB variables (at least 1), as bytes, under their setting's name."""
    return {
        attr: _int(var, env[var], minimum=1) * 1024 * 1024
        for var, attr in names.items()
        if env.get(var)
    }


def _api_values(env: Mapping[str, str]) -> dict[str, Any]:
    """The API's settings that are not plain strings or integers."""
    values: dict[str, Any] = {}
    if env.get("WEBHOOK_API_RATE_LIMIT"):
        values["api_rate_limit"] = _float("WEBHOOK_API_RATE_LIMIT", env["WEBHOOK_API_RATE_LIMIT"])
    if env.get("WEBHOOK_INCOMING_RATE_LIMIT"):
        values["incoming_rate_limit"] = _float(
            "WEBHOOK_INCOMING_RATE_LIMIT", env["WEBHOOK_INCOMING_RATE_LIMIT"]
        )
    if env.get("WEBHOOK_API_CORS_ORIGINS"):
        origins = env["WEBHOOK_API_CORS_ORIGINS"].split(",")
        values["api_cors_origins"] = tuple(o.strip() for o in origins if o.strip())
    return values


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


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the worker and the CLI are configured with."""

    bootstrap_servers: str | None = None
    kafka_properties: Mapping[str, str] = field(default_factory=dict, repr=False)
    input_topics: str = "events"
    topic_prefix: str = "webhooks."
    group_id: str = "webhook-worker"
    metrics_port: int = 9400
    retry_delays_ms: tuple[int, ...] = tuple(
        parse_duration(d) for d in DEFAULT_RETRY_DELAYS.split(",")
    )
    allow_http: bool = False
    allow_private_networks: bool = False
    allowed_networks: tuple[Network, ...] = ()
    dns_servers: tuple[str, ...] = ()
    egress_proxy: str | None = field(default=None, repr=False)  # may carry a password
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    secrets_key: str | None = field(default=None, repr=False)
    max_event_bytes: int = 1_000_000
    shutdown_timeout_ms: int = 30_000
    max_in_flight: int = 512
    max_in_flight_per_workspace: int = 50
    # Tasks read from ``deliveries`` but not yet started, estimated in memory (dispatcher).
    read_ahead_bytes: int = 64 * 1024 * 1024
    default_timeout_ms: int = 15_000
    max_endpoints_per_workspace: int = 0
    disable_after_failures: int = 20
    disable_after_ms: int = 5 * 86_400_000
    dedupe_window_ms: int = 120_000
    event_loop: str = "uvloop"
    challenge_cache: str = "~/.cache/webhook-worker/challenges.json"
    demo_secret: str | None = field(default=None, repr=False)
    # Path of the event-type catalogue (JSON); None: no catalogue, any pattern accepted.
    event_types: str | None = None
    # ``api``'s rebuildable index of attempts and dead letters, and how long it keeps them.
    api_data_dir: str = "~/.cache/webhook-worker/api"
    api_log_retention_ms: int = 30 * 86_400_000
    # ``api``: its port, public base URL, and abuse limits.
    api_port: int = 8088
    public_url: str | None = None
    api_max_body_bytes: int = 256 * 1024
    api_rate_limit: float = 20.0  # requests per second per token (0: none)
    api_rate_burst: int = 100
    api_cors_origins: tuple[str, ...] = ()
    # The portal: link and session signing key, idle limit, framing and theme.
    portal_key: str | None = field(default=None, repr=False)
    portal_idle_ms: int = 3_600_000
    portal_frame_ancestors: str = "'self'"
    portal_brand_color: str = "#2f5bea"
    portal_logo_url: str | None = None
    # Incoming webhooks (``POST /in/{source}``): how long a webhook-id is remembered, the
    # per-source request rate (0: none), and a test-only pause (``claimed`` or ``recorded``)
    # that holds a request at that step so a test can kill the process there.
    incoming_dedupe_window_ms: int = 600_000
    incoming_rate_limit: float = 1000.0
    incoming_test_pause: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``env`` (default ``os.environ``); ``overrides`` win (CLI flags)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        simple = {
            "KAFKA_BOOTSTRAP_SERVERS": "bootstrap_servers",
            "WEBHOOK_INPUT_TOPICS": "input_topics",
            "WEBHOOK_TOPIC_PREFIX": "topic_prefix",
            "WEBHOOK_GROUP_ID": "group_id",
            "WEBHOOK_SECRETS_KEY": "secrets_key",
            "WEBHOOK_CHALLENGE_CACHE": "challenge_cache",
            "WEBHOOK_DEMO_SECRET": "demo_secret",
            "WEBHOOK_EVENT_LOOP": "event_loop",
            "WEBHOOK_EVENT_TYPES": "event_types",
            "WEBHOOK_API_DATA_DIR": "api_data_dir",
            "WEBHOOK_PUBLIC_URL": "public_url",
            "WEBHOOK_CA_BUNDLE": "ca_bundle",
            "WEBHOOK_CLIENT_CERT": "client_cert",
            "WEBHOOK_CLIENT_KEY": "client_key",
            "WEBHOOK_PORTAL_KEY": "portal_key",
            "WEBHOOK_PORTAL_FRAME_ANCESTORS": "portal_frame_ancestors",
            "WEBHOOK_PORTAL_BRAND_COLOR": "portal_brand_color",
            "WEBHOOK_PORTAL_LOGO_URL": "portal_logo_url",
            "WEBHOOK_INCOMING_TEST_PAUSE": "incoming_test_pause",
        }
        for var, attr in simple.items():
            if env.get(var):
                values[attr] = env[var]
        ints = {
            "WEBHOOK_METRICS_PORT": "metrics_port",
            "WEBHOOK_API_PORT": "api_port",
            "WEBHOOK_API_MAX_BODY_BYTES": "api_max_body_bytes",
            "WEBHOOK_API_RATE_BURST": "api_rate_burst",
            "WEBHOOK_MAX_EVENT_BYTES": "max_event_bytes",
            "WEBHOOK_MAX_IN_FLIGHT": "max_in_flight",
            "WEBHOOK_MAX_IN_FLIGHT_PER_WORKSPACE": "max_in_flight_per_workspace",
            "WEBHOOK_MAX_ENDPOINTS_PER_WORKSPACE": "max_endpoints_per_workspace",
            "WEBHOOK_DISABLE_AFTER_FAILURES": "disable_after_failures",
        }
        for var, attr in ints.items():
            if env.get(var):
                values[attr] = _int(var, env[var])
        values.update(_megabytes(env, {"WEBHOOK_READ_AHEAD_MB": "read_ahead_bytes"}))
        durations = {
            "WEBHOOK_SHUTDOWN_TIMEOUT": "shutdown_timeout_ms",
            "WEBHOOK_DEFAULT_TIMEOUT": "default_timeout_ms",
            "WEBHOOK_DISABLE_AFTER": "disable_after_ms",
            "WEBHOOK_DEDUPE_WINDOW": "dedupe_window_ms",
            "WEBHOOK_API_LOG_RETENTION": "api_log_retention_ms",
            "WEBHOOK_PORTAL_IDLE": "portal_idle_ms",
            "WEBHOOK_INCOMING_DEDUPE_WINDOW": "incoming_dedupe_window_ms",
        }
        for var, attr in durations.items():
            if env.get(var):
                values[attr] = _duration_var(var, env[var])
        values.update(_api_values(env))
        parsed: dict[str, tuple[str, Callable[[str], Any]]] = {
            "WEBHOOK_ALLOWED_NETWORKS": ("allowed_networks", parse_networks),
            "WEBHOOK_DNS_SERVERS": ("dns_servers", parse_dns_servers),
            "WEBHOOK_EGRESS_PROXY": ("egress_proxy", parse_proxy),
            "WEBHOOK_RETRY_DELAYS": ("retry_delays_ms", parse_retry_delays),
        }
        for var, (attr, parse) in parsed.items():
            if env.get(var):
                values[attr] = parse(env[var])
        for var, attr in (
            ("WEBHOOK_ALLOW_HTTP", "allow_http"),
            ("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "allow_private_networks"),
        ):
            if var in env:
                values[attr] = _bool(var, env[var])
        values["kafka_properties"] = {
            key[len("KAFKA_") :].lower().replace("_", "."): value
            for key, value in env.items()
            if key.startswith("KAFKA_") and key not in _NOT_LIBRDKAFKA
        }
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


def _duration_var(name: str, value: str) -> int:
    try:
        return parse_duration(value)
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from None
