"""The token string: generation, parsing (secrets holding ``_`` and ``-``) and hashing."""

from __future__ import annotations

import hashlib
import re

import pytest

from worker.tokens.format import (
    generate_secret,
    hash_matches,
    make_token,
    new_token_id,
    parse_token,
    token_hash,
)


def test_generated_tokens_round_trip() -> None:
    for _ in range(200):
        token_id, secret = new_token_id(), generate_secret()
        assert re.fullmatch(r"tok[0-9a-f]{20}", token_id)
        assert len(secret) == 43 and "=" not in secret, "32 bytes, base64url, no padding"
        token = make_token(token_id, secret)
        assert token == f"wwt_{token_id}_{secret}"
        assert parse_token(token) == (token_id, secret)


@pytest.mark.parametrize(
    "secret",
    [
        "_" * 43,
        "-" * 43,
        "a_b-c" + "_" * 38,
        "__leading_underscores_and-dashes-" + "x" * 10,
        "A" * 42 + "_",
    ],
)
def test_secrets_with_underscores_and_dashes_split_after_the_id(secret: str) -> None:
    token_id = "tok" + "0123456789abcdef0123"
    token = make_token(token_id, secret)
    assert parse_token(token) == (token_id, secret)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "wwt_",
        "wwt__",
        "Bearer wwt_tok0123456789abcdef0123_" + "a" * 43,
        "wwx_tok0123456789abcdef0123_" + "a" * 43,
        "wwt_tok0123456789abcdef0123" + "a" * 43,  # no separator
        "wwt_tok0123456789abcdef012_" + "a" * 43,  # id too short
        "wwt_tok0123456789ABCDEF0123_" + "a" * 43,  # id not lowercase hex
        "wwt_tok0123456789abcdef0123_" + "a" * 42,  # secret under 32 bytes
        "wwt_tok0123456789abcdef0123_" + "a" * 42 + "=",  # padding
        "wwt_tok0123456789abcdef0123_" + "a" * 42 + " ",
        "wwt_tok0123456789abcdef0123_" + "a" * 5000,  # absurdly long
        "wwt_tok0123456789abcdef0123_" + "é" * 43,
    ],
)
def test_malformed_tokens_do_not_parse(token: str) -> None:
    assert parse_token(token) is None


def test_make_token_refuses_malformed_parts() -> None:
    with pytest.raises(ValueError):
        make_token("tok_with_underscores_", generate_secret())
    with pytest.raises(ValueError):
        make_token(new_token_id(), "short")


def test_only_the_sha256_of_the_whole_token_matches() -> None:
    token = make_token(new_token_id(), generate_secret())
    stored = token_hash(token)
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    assert hash_matches(token, stored)
    assert not hash_matches(token[:-1] + ("A" if token[-1] != "A" else "B"), stored)
    assert not hash_matches(token, stored.upper()), "the stored form is lowercase hex"
