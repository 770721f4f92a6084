"""Log setup: JSON lines parse, secrets never reach the output."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import orjson
import pytest

from worker.observability.logging import REDACTED, RedactSecrets, redact, setup_logging

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CIPHERTEXT = "enc:v1:q8Zk3v/abc+def==:Zm9v"


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_redact_strings_and_containers() -> None:
    assert redact(f"secret={SECRET}!") == f"secret={REDACTED}!"
    assert redact(f"stored {CIPHERTEXT} here") == f"stored {REDACTED} here"
    assert redact({"a": [SECRET, ("x", CIPHERTEXT)], "n": 3}) == {
        "a": [REDACTED, ("x", REDACTED)],
        "n": 3,
    }
    assert redact(REDACTED) == REDACTED
    assert redact("no secrets") == "no secrets"


@pytest.mark.usefixtures("restore_root")
def test_json_lines_parse_with_extras() -> None:
    stream = io.StringIO()
    setup_logging("DEBUG", json_lines=True, stream=stream)
    logging.getLogger("worker.test").info(
        "delivered %s", "evt_1", extra={"subscription_id": "sub_1", "attempt": 2, "raw": b"x"}
    )
    [entry] = lines(stream)
    assert entry["level"] == "info"
    assert entry["logger"] == "worker.test"
    assert entry["message"] == "delivered evt_1"
    assert entry["subscription_id"] == "sub_1"
    assert entry["attempt"] == 2
    assert entry["raw"] == "b'x'"
    assert isinstance(entry["ts"], str) and entry["ts"].endswith("Z")


@pytest.mark.usefixtures("restore_root")
def test_secrets_redacted_everywhere() -> None:
    stream = io.StringIO()
    setup_logging(json_lines=True, stream=stream)
    log = logging.getLogger("worker.test")
    log.warning("created with %s", SECRET, extra={"secret": CIPHERTEXT, "headers": {"k": SECRET}})
    try:
        raise ValueError(f"bad secret {SECRET}")
    except ValueError:
        log.exception("failed")
    output = stream.getvalue()
    assert SECRET not in output
    assert CIPHERTEXT not in output
    first, second = lines(stream)
    assert first["message"] == f"created with {REDACTED}"
    assert first["secret"] == REDACTED
    assert first["headers"] == {"k": REDACTED}
    assert "ValueError: bad secret whsec_***" in str(second["exc"])


@pytest.mark.usefixtures("restore_root")
def test_human_format_and_level() -> None:
    stream = io.StringIO()
    setup_logging("WARNING", json_lines=False, stream=stream)
    log = logging.getLogger("worker.test")
    log.info("hidden")
    log.warning("retrying %s", SECRET, extra={"delivery_id": "msg_1"})
    [line] = stream.getvalue().splitlines()
    assert "WARNING worker.test: retrying whsec_*** delivery_id=msg_1" in line
    assert re.match(r"\d\d:\d\d:\d\d\.\d{3} ", line)


@pytest.mark.usefixtures("restore_root")
def test_auto_format_and_idempotent_setup() -> None:
    stream = io.StringIO()  # not a TTY: JSON
    setup_logging(stream=stream)
    setup_logging(stream=stream)
    logging.getLogger("worker.test").info("once")
    assert [e["message"] for e in lines(stream)] == ["once"]


def test_unknown_level_rejected() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        setup_logging("LOUD", stream=io.StringIO())


def test_filter_survives_bad_format_string() -> None:
    record = logging.LogRecord("t", logging.INFO, "", 0, "%d %d", ("one",), None)
    assert RedactSecrets().filter(record) is True
    assert record.msg == "%d %d"
