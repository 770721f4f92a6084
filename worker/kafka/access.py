"""Why the cluster refuses us, in one line, before a command starts.

librdkafka retries a refused login (``_AUTHENTICATION``: a wrong SASL password or mechanism)
or a failed TLS handshake (``_SSL``: an untrusted broker certificate) forever and reports the
cause only through ``error_cb``, while every request merely times out with "Broker transport
failure" -- half a minute later, after a screenful of its own log lines. :func:`check_access`
makes one metadata round trip with a quiet client and fails within seconds naming the cause.
The CLI runs it before every command that needs the cluster, and ``run`` and ``api`` before
they start (a worker that cannot log in exits, as it does when the cluster does not answer).
"""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, KafkaException, Producer

from worker.config import Settings
from worker.errors import BackendError

__all__ = ["AccessError", "check_access", "describe"]

# Errors that retrying cannot fix: the cluster answered, and refused us.
_REFUSALS = {
    KafkaError._AUTHENTICATION: "broker authentication failed",
    KafkaError.SASL_AUTHENTICATION_FAILED: "broker authentication failed",
    KafkaError._SSL: "TLS with the broker failed",
}
CHECK_TIMEOUT_S = 10.0


class AccessError(BackendError):
    """The cluster refused our credentials or TLS, or did not answer; one line."""


def describe(error: KafkaError) -> str | None:
    """``"broker authentication failed: <librdkafka's reason>"`` for a refusal, else None."""
    what = _REFUSALS.get(error.code())
    if what is None:
        return None
    # librdkafka's text starts with the broker's name and ends with its state; keep the middle.
    reason = error.str().split(": ", 1)[-1].split(" (after ", 1)[0]
    return f"{what}: {reason}"


def check_access(settings: Settings, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Return once the cluster answers a metadata request; AccessError naming the cause
    (refused credentials, failed TLS, nobody answering) otherwise, within ``timeout_s``.
    Its client logs nothing itself (``log_level`` 0): the cause is in the error."""
    refusals: list[str] = []

    def on_error(error: KafkaError) -> None:
        cause = describe(error)
        if cause is not None:
            refusals.append(cause)

    probe = Producer({**settings.to_librdkafka(), "error_cb": on_error, "log_level": 0})
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        probe.poll(0.05)  # serves error_cb
        if refusals:
            raise AccessError(refusals[-1])
        try:
            probe.list_topics(timeout=0.5)
            return
        except KafkaException as exc:
            error = exc.args[0]
            last = error.str() if isinstance(error, KafkaError) else str(exc)
    raise AccessError(
        f"Kafka at {settings.bootstrap_servers} did not answer within {timeout_s:.0f}s ({last})"
    )
