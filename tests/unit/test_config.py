"""Settings.from_env: what each variable becomes, and one clear error per bad value."""

from __future__ import annotations

import pytest

from worker.config import (
    DEFAULT_RETRY_DELAYS,
    ConfigError,
    Settings,
    format_duration,
    parse_duration,
)


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.bootstrap_servers is None
    assert settings.input_topic_list() == ["events"]
    assert settings.topic_prefix == "webhooks."
    assert settings.group_id == "webhook-worker"
    assert settings.metrics_port == 9400
    assert not settings.allow_http and not settings.allow_private_networks
    assert settings.retry_delays_ms == tuple(
        parse_duration(d) for d in DEFAULT_RETRY_DELAYS.split(",")
    )
    assert settings.max_attempts == len(settings.retry_delays_ms) + 1
    assert settings.read_ahead_bytes == 64 * 1024 * 1024
    assert settings.api_data_dir == "~/.cache/webhook-worker/api"
    assert settings.api_log_retention_ms == 30 * 86_400_000


def test_read_ahead_is_given_in_mib() -> None:
    assert Settings.from_env({"WEBHOOK_READ_AHEAD_MB": "8"}).read_ahead_bytes == 8 * 1024 * 1024


def test_kafka_properties_become_librdkafka_names() -> None:
    settings = Settings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "PLAIN",
            "KAFKA_SASL_PASSWORD": "hunter2",
            "PATH": "/usr/bin",
        }
    )
    assert settings.to_librdkafka() == {
        "bootstrap.servers": "k1:9092,k2:9092",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.password": "hunter2",
    }
    assert "hunter2" not in repr(settings)


def test_without_bootstrap_servers_clients_fail_clearly() -> None:
    with pytest.raises(ConfigError, match="KAFKA_BOOTSTRAP_SERVERS"):
        Settings.from_env({}).to_librdkafka()


def test_webhook_variables() -> None:
    settings = Settings.from_env(
        {
            "WEBHOOK_INPUT_TOPICS": "orders, contacts ,",
            "WEBHOOK_TOPIC_PREFIX": "wh.",
            "WEBHOOK_GROUP_ID": "g",
            "WEBHOOK_METRICS_PORT": "0",
            "WEBHOOK_RETRY_DELAYS": "1s,30s,5m,2h",
            "WEBHOOK_ALLOW_HTTP": "true",
            "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1",
            "WEBHOOK_SHUTDOWN_TIMEOUT": "1.5s",
            "WEBHOOK_DEFAULT_TIMEOUT": "500ms",
            "WEBHOOK_API_DATA_DIR": "/var/lib/ww",
            "WEBHOOK_API_LOG_RETENTION": "7d",
        }
    )
    assert settings.api_data_dir == "/var/lib/ww"
    assert settings.api_log_retention_ms == 7 * 86_400_000
    assert settings.input_topic_list() == ["orders", "contacts"]
    assert (settings.topic_prefix, settings.group_id, settings.metrics_port) == ("wh.", "g", 0)
    assert settings.retry_delays_ms == (1_000, 30_000, 300_000, 7_200_000)
    assert settings.max_attempts == 5
    assert settings.allow_http and settings.allow_private_networks
    assert (settings.shutdown_timeout_ms, settings.default_timeout_ms) == (1_500, 500)


def test_regex_input_topics_stay_one_pattern() -> None:
    settings = Settings.from_env({"WEBHOOK_INPUT_TOPICS": "^events\\..*"})
    assert settings.input_topic_list() == ["^events\\..*"]


def test_overrides_win_over_the_environment_and_none_is_ignored() -> None:
    settings = Settings.from_env(
        {"WEBHOOK_GROUP_ID": "from-env", "WEBHOOK_TOPIC_PREFIX": "env."},
        group_id="from-flag",
        topic_prefix=None,
    )
    assert (settings.group_id, settings.topic_prefix) == ("from-flag", "env.")


@pytest.mark.parametrize(
    ("text", "ms"),
    [("500ms", 500), ("30s", 30_000), ("5m", 300_000), ("2h", 7_200_000), ("1d", 86_400_000)],
)
def test_durations_round_trip(text: str, ms: int) -> None:
    assert parse_duration(text) == ms
    assert format_duration(ms) == text


def test_format_duration_picks_the_largest_exact_unit() -> None:
    assert format_duration(90_000) == "90s"
    assert format_duration(1_500) == "1500ms"
    assert format_duration(3_600_000) == "1h"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WEBHOOK_METRICS_PORT", "ninety"),
        ("WEBHOOK_METRICS_PORT", "-1"),
        ("WEBHOOK_MAX_IN_FLIGHT", "1.5"),
        ("WEBHOOK_READ_AHEAD_MB", "0"),
        ("WEBHOOK_READ_AHEAD_MB", "64MB"),
        ("WEBHOOK_RETRY_DELAYS", "1s,soon"),
        ("WEBHOOK_RETRY_DELAYS", ","),
        ("WEBHOOK_SHUTDOWN_TIMEOUT", "10"),
        ("WEBHOOK_ALLOW_HTTP", "maybe"),
        ("WEBHOOK_INPUT_TOPICS", "^(unclosed"),
        ("WEBHOOK_EVENT_LOOP", "trio"),
        ("WEBHOOK_EGRESS_PROXY", "socks5://127.0.0.1:1080"),
        ("WEBHOOK_EGRESS_PROXY", "http://proxy.internal"),
        ("WEBHOOK_EGRESS_PROXY", "http://proxy.internal:3128/path"),
        ("WEBHOOK_CLIENT_KEY", "/etc/key.pem"),
        ("WEBHOOK_API_LOG_RETENTION", "30"),
        ("WEBHOOK_API_LOG_RETENTION", "0d"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    message = str(caught.value)
    assert variable in message or value in message
    assert "\n" not in message


def test_egress_settings() -> None:
    settings = Settings.from_env(
        {
            "WEBHOOK_EGRESS_PROXY": "http://user:pw@10.0.0.3:3128",
            "WEBHOOK_CA_BUNDLE": "/etc/ca.pem",
            "WEBHOOK_CLIENT_CERT": "/etc/cert.pem",
            "WEBHOOK_CLIENT_KEY": "/etc/key.pem",
        }
    )
    assert settings.egress_proxy == "http://user:pw@10.0.0.3:3128"
    assert "pw" not in repr(settings)
    assert (settings.ca_bundle, settings.client_cert, settings.client_key) == (
        "/etc/ca.pem",
        "/etc/cert.pem",
        "/etc/key.pem",
    )


def test_bad_retry_delay_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="WEBHOOK_RETRY_DELAYS"):
        Settings.from_env({"WEBHOOK_RETRY_DELAYS": "1s,soon"})


def test_secrets_key_is_not_in_repr() -> None:
    settings = Settings.from_env({"WEBHOOK_SECRETS_KEY": "s3cr3t-key-material"})
    assert settings.secrets_key == "s3cr3t-key-material"
    assert "s3cr3t" not in repr(settings)
    assert "s3cr3t" not in str(settings)


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(AttributeError):
        settings.group_id = "other"  # type: ignore[misc]
