"""API tokens against the real broker: the CLI creates, lists and revokes; registries that
follow ``api-tokens`` (one per replica) authenticate, and stop within seconds of a revoke."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tests.support.cli import cli_error, cli_json, run_cli
from tests.support.wait import wait_for
from worker.codec.avro import AvroCodec
from worker.config import Settings
from worker.tokens.format import parse_token, token_hash
from worker.tokens.model import Principal
from worker.tokens.registry import TokenRegistry, open_registry


@contextmanager
def replica(settings: Settings) -> Iterator[TokenRegistry]:
    """One registry with its own follower, as one API replica has."""
    registry = open_registry(settings, AvroCodec())
    try:
        assert registry.wait_caught_up(30)
        yield registry
    finally:
        registry.stop()


def test_created_tokens_authenticate_and_revoked_ones_stop_on_every_replica(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(partitions=1)
    created = cli_json(settings, "tokens", "create", "--workspace", "acme", "--name", "ci")
    token = created["token"]
    assert parse_token(token) is not None and parse_token(token)[0] == created["id"]
    assert (created["workspace"], created["admin"], created["name"]) == ("acme", False, "ci")
    assert created["created_at"].endswith("Z")
    admin = cli_json(settings, "tokens", "create", "--admin")
    assert admin["admin"] is True and admin["workspace"] is None

    with replica(settings) as one, replica(settings) as two:
        revoked: list[str] = []
        two.on_revoke(revoked.append)
        for registry in (one, two):
            assert registry.authenticate(f"Bearer {token}") == Principal(
                created["id"], "acme", False, "ci"
            )
            principal = registry.authenticate(f"Bearer {admin['token']}")
            assert principal is not None and principal.can_access("anything")

        listed = run_cli(settings, "tokens", "list", "--output", "json")
        assert listed.returncode == 0, listed.stderr
        text = run_cli(settings, "tokens", "list", "--workspace", "acme")
        for output in (listed.stdout.decode(), text.stdout.decode()):
            assert token not in output and token.rsplit("_", 1)[-1] not in output
            assert token_hash(token) not in output and token_hash(admin["token"]) not in output
            assert created["id"] in output
        views = {v["id"]: v for v in cli_json(settings, "tokens", "list")}
        assert set(views) == {created["id"], admin["id"]}
        assert views[created["id"]]["revoked_at"] is None
        assert [v["id"] for v in cli_json(settings, "tokens", "list", "--workspace", "acme")] == [
            created["id"]
        ]

        gone = cli_json(settings, "tokens", "revoke", created["id"])
        assert gone["id"] == created["id"] and gone["revoked_at"] is not None
        for registry in (one, two):
            assert wait_for(lambda r=registry: r.authenticate(f"Bearer {token}") is None, 5)
        assert revoked == [created["id"]]
        assert two.authenticate(f"Bearer {admin['token']}") is not None, "others still work"

    views = {v["id"]: v for v in cli_json(settings, "tokens", "list")}
    assert views[created["id"]]["revoked_at"] == gone["revoked_at"]
    again = cli_json(settings, "tokens", "revoke", created["id"])
    assert again["revoked_at"] == gone["revoked_at"], "revoking twice changes nothing"
    with replica(settings) as fresh:
        assert fresh.authenticate(f"Bearer {token}") is None, "a new replica reads the revoke"


def test_the_create_text_output_shows_the_token_once(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(partitions=1)
    result = run_cli(settings, "tokens", "create", "--workspace", "globex")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    token = next(line for line in lines if line.startswith("wwt_"))
    assert "shown only now" in result.stdout.decode()
    with replica(settings) as registry:
        principal = registry.authenticate(f"Bearer {token}")
        assert principal is not None and principal.workspace == "globex"


def test_bad_requests_fail_with_one_line_and_write_nothing(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(partitions=1)
    assert "unknown token tok0000" in cli_error(settings, "tokens", "revoke", "tok0000")
    assert "invalid workspace" in cli_error(settings, "tokens", "create", "--workspace", "a/b")
    assert "error" in cli_error(settings, "tokens", "create")
    assert "error" in cli_error(settings, "tokens", "create", "--admin", "--workspace", "x")
    assert cli_json(settings, "tokens", "list") == []


def test_a_missing_topic_is_one_clear_line(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(partitions=1)
    err = cli_error(settings, "tokens", "list", "--topic-prefix", "never-ensured.")
    assert "does not exist" in err and "topics ensure" in err
