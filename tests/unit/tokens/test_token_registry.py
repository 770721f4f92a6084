"""The registry without a broker: records applied by hand, then authentication, listing,
revocation and the revoke hook."""

from __future__ import annotations

from dataclasses import replace

import pytest

from worker.codec.avro import AvroCodec, CodecError
from worker.tokens import format as token_format
from worker.tokens.format import generate_secret, make_token, new_token_id, token_hash
from worker.tokens.model import Principal, TokenRecord, decode_token, encode_token
from worker.tokens.registry import TokenRegistry


@pytest.fixture(scope="module")
def avro() -> AvroCodec:
    return AvroCodec()


def issue(
    registry: TokenRegistry, avro: AvroCodec, workspace: str | None, *, created_ms: int = 1000
) -> tuple[TokenRecord, str]:
    token_id = new_token_id()
    token = make_token(token_id, generate_secret())
    record = TokenRecord(
        token_id, token_hash(token), workspace, workspace is None, "ci", created_ms
    )
    registry.apply(token_id.encode(), encode_token(avro, record))
    return record, token


def test_the_record_round_trips_through_avro(avro: AvroCodec) -> None:
    record = TokenRecord("tok" + "a" * 20, "ab" * 32, None, True, "ops", 5, revoked_ms=9)
    assert decode_token(avro, encode_token(avro, record)) == record
    workspace = replace(record, workspace="acme", admin=False, revoked_ms=None)
    assert decode_token(avro, encode_token(avro, workspace)) == workspace
    with pytest.raises(CodecError):
        decode_token(avro, avro.encode("Progress", {"key": "x", "offsets": []}))


def test_a_valid_bearer_token_authenticates_as_its_principal(avro: AvroCodec) -> None:
    registry = TokenRegistry(avro)
    record, token = issue(registry, avro, "acme")
    principal = registry.authenticate(f"Bearer {token}")
    assert principal == Principal(record.id, "acme", False, "ci")
    assert principal.can_access("acme") and not principal.can_access("other")
    assert registry.authenticate(f"bearer   {token}  ") == principal, "scheme is case-insensitive"

    admin, admin_token = issue(registry, avro, None)
    boss = registry.authenticate(f"Bearer {admin_token}")
    assert boss == Principal(admin.id, None, True, "ci")
    assert boss.can_access("acme") and boss.can_access("other")


def test_the_right_id_with_another_secret_is_refused(avro: AvroCodec) -> None:
    registry = TokenRegistry(avro)
    record, token = issue(registry, avro, "acme")
    forged = make_token(record.id, generate_secret())
    assert registry.authenticate(f"Bearer {forged}") is None
    # The only thing that differs is the secret: one changed character is enough.
    last = token[-1]
    assert registry.authenticate(f"Bearer {token[:-1]}{'B' if last == 'A' else 'A'}") is None
    assert registry.authenticate(f"Bearer {token}") is not None


def test_the_hash_is_compared_in_constant_time(
    avro: AvroCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = TokenRegistry(avro)
    record, _ = issue(registry, avro, "acme")
    compared: list[tuple[bytes, bytes]] = []
    real = token_format.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(token_format.hmac, "compare_digest", spy)
    forged = make_token(record.id, generate_secret())
    assert registry.authenticate(f"Bearer {forged}") is None
    assert compared == [(token_hash(forged).encode(), record.hash.encode())]
    # An unknown id costs the same comparison, against a hash nothing matches.
    assert registry.authenticate(f"Bearer {make_token(new_token_id(), generate_secret())}") is None
    assert len(compared) == 2


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token wwt_tok0123456789abcdef0123_" + "a" * 43,
        "Bearer wwt_tok0123456789abcdef0123",
        "Bearer not-a-token",
        "Bearer wwt_tok0123456789abcdef0123_" + "a" * 43,  # well-formed, unknown
    ],
)
def test_missing_malformed_and_unknown_headers_are_refused(
    avro: AvroCodec, header: str | None
) -> None:
    registry = TokenRegistry(avro)
    issue(registry, avro, "acme")
    assert registry.authenticate(header) is None


def test_revoked_and_deleted_tokens_stop_working_and_are_reported(avro: AvroCodec) -> None:
    registry = TokenRegistry(avro)
    revoked_ids: list[str] = []
    registry.on_revoke(revoked_ids.append)
    record, token = issue(registry, avro, "acme")
    other, other_token = issue(registry, avro, "acme", created_ms=2000)
    assert revoked_ids == []

    registry.apply(record.id.encode(), encode_token(avro, replace(record, revoked_ms=3000)))
    assert registry.authenticate(f"Bearer {token}") is None
    assert revoked_ids == [record.id]
    assert [t.id for t in registry.list("acme")] == [record.id, other.id], "revoked are listed"
    assert registry.list("acme")[0].revoked

    registry.apply(other.id.encode(), None)
    assert registry.authenticate(f"Bearer {other_token}") is None
    assert registry.get(other.id) is None
    assert revoked_ids == [record.id, other.id]
    registry.apply(b"tok-never-seen", None)
    assert revoked_ids == [record.id, other.id], "a tombstone for nothing is no revocation"


def test_a_failing_listener_does_not_stop_the_registry(avro: AvroCodec) -> None:
    registry = TokenRegistry(avro)

    def broken(_token_id: str) -> None:
        raise RuntimeError("portal down")

    seen: list[str] = []
    registry.on_revoke(broken)
    registry.on_revoke(seen.append)
    record, _ = issue(registry, avro, "acme")
    registry.apply(record.id.encode(), encode_token(avro, replace(record, revoked_ms=5)))
    assert seen == [record.id]


def test_list_filters_by_workspace_and_skips_unreadable_records(avro: AvroCodec) -> None:
    registry = TokenRegistry(avro)
    a, _ = issue(registry, avro, "acme", created_ms=3)
    b, _ = issue(registry, avro, "globex", created_ms=2)
    admin, _ = issue(registry, avro, None, created_ms=1)
    registry.apply(b"tok-garbage", b"not avro")
    registry.apply(None, encode_token(avro, a))
    # A record whose key is not its id is refused (it would shadow another token).
    registry.apply(b"tokmismatch", encode_token(avro, a))
    assert registry.skipped == 3
    assert [t.id for t in registry.list()] == [admin.id, b.id, a.id]
    assert [t.id for t in registry.list("acme")] == [a.id]
    assert registry.list("nobody") == []
    assert "hash" not in a.public() and a.public()["created_at"] == "1970-01-01T00:00:00.003Z"


def test_a_registry_that_follows_nothing_is_not_ready(avro: AvroCodec) -> None:
    assert TokenRegistry(avro).ready() is False
