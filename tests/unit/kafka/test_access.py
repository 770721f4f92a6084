"""The access check's one-line causes: librdkafka's refusals named, and a cluster that does not
answer reported within the timeout (no broker needed: nothing listens on port 1)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError

from worker.config import Settings
from worker.kafka.access import AccessError, check_access, describe


def test_refusals_are_named_without_the_broker_name_and_state() -> None:
    sasl = KafkaError(
        KafkaError._AUTHENTICATION,
        "sasl_ssl://127.0.0.1:9096/bootstrap: SASL authentication error: Authentication failed"
        " during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
        " (after 312ms in state AUTH_REQ)",
    )
    assert describe(sasl) == (
        "broker authentication failed: SASL authentication error: Authentication failed during"
        " authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
    )
    tls = KafkaError(
        KafkaError._SSL,
        "ssl://b:9093/bootstrap: SSL handshake failed: certificate verify failed (after 5ms in"
        " state SSL_HANDSHAKE)",
    )
    assert (
        describe(tls)
        == "TLS with the broker failed: SSL handshake failed: certificate verify failed"
    )
    assert describe(KafkaError(KafkaError._TRANSPORT, "b: Connection refused")) is None
    assert describe(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down")) is None


def test_a_cluster_that_does_not_answer_fails_within_the_timeout() -> None:
    settings = Settings.from_env({}, bootstrap_servers="127.0.0.1:1")
    started = time.monotonic()
    with pytest.raises(AccessError, match=r"Kafka at 127\.0\.0\.1:1 did not answer within 1s"):
        check_access(settings, timeout_s=1.0)
    assert time.monotonic() - started < 5
