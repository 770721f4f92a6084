"""Custom header validation (RFC 9110 tokens and field values) at subscription creation."""

from __future__ import annotations

import pytest

from worker.outbound.headers import InvalidHeader, validate_header
from worker.subscriptions.edit import parse_header
from worker.subscriptions.store import InvalidSubscription


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Team", "payments"),
        ("x-api-key", "abc def\tghi"),
        ("Authorization", "Bearer abc.def-ghi_jkl~="),
        ("x-empty", ""),
        ("x-latin", "caf\xe9"),
        ("!#$%&'*+-.^_`|~09AZaz", "v"),
    ],
)
def test_well_formed_headers_pass(name: str, value: str) -> None:
    validate_header(name, value)


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("a\r\nX-Injected", "1", "invalid header name"),
        ("x-a", "b\r\nX-Injected: 1", "control characters"),
        ("x-a", "b\nc", "control characters"),
        ("x-a", "b\x00c", "control characters"),
        ("x-a", "b\x1bc", "control characters"),
        ("x-a", "b\x7f", "control characters"),
        ("x-a", " padded", "white space"),
        ("x-a", "\u20ac", "Latin-1"),
        ("bad name", "v", "invalid header name"),
        ("x:y", "v", "invalid header name"),
        ("", "v", "empty header name"),
        ("x" * 257, "v", "invalid header name"),
        ("x-a", "v" * 8193, "over 8192"),
        ("Host", "evil.example", "set by the delivery"),
        ("Content-Length", "0", "set by the delivery"),
        ("transfer-encoding", "chunked", "set by the delivery"),
        ("webhook-signature", "v1,forged", "set by the delivery"),
    ],
)
def test_malformed_or_reserved_headers_are_refused(name: str, value: str, why: str) -> None:
    with pytest.raises(InvalidHeader, match=why):
        validate_header(name, value)


def test_parse_header_validates() -> None:
    assert parse_header("X-Team:  payments ") == ("X-Team", "payments")
    for text in ("a\r\nX-Injected: 1", "X-A: b\r\nX-Injected: 1", "Host: x", "X-A: \x1b[2J"):
        with pytest.raises(InvalidSubscription):
            parse_header(text)
