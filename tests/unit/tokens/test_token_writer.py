"""What the writer refuses before anything reaches Kafka."""

from __future__ import annotations

import pytest

from worker.tokens.writer import InvalidToken, check_request, validate_workspace


@pytest.mark.parametrize("workspace", ["acme", "ws_123", "a", "org:team.1", "x@y+z-w", "9" * 200])
def test_sane_workspaces_are_accepted(workspace: str) -> None:
    assert validate_workspace(workspace) == workspace


@pytest.mark.parametrize(
    "workspace", ["", " acme", "acme/other", "a b", "_lead", "-lead", "é", "x" * 201, "a\n"]
)
def test_other_workspaces_are_refused(workspace: str) -> None:
    with pytest.raises(InvalidToken, match="invalid workspace"):
        validate_workspace(workspace)


@pytest.mark.parametrize(
    ("workspace", "admin", "name", "error"),
    [
        (None, False, "", "exactly one"),
        ("acme", True, "", "exactly one"),
        ("acme", False, "x" * 201, "invalid name"),
        (None, True, "line\nbreak", "invalid name"),
        ("a/b", False, "", "invalid workspace"),
    ],
)
def test_requests_are_one_workspace_or_admin_with_a_short_name(
    workspace: str | None, admin: bool, name: str, error: str
) -> None:
    with pytest.raises(InvalidToken, match=error):
        check_request(workspace=workspace, admin=admin, name=name)
    check_request(workspace="acme", admin=False, name="deploy bot")
    check_request(workspace=None, admin=True, name="")
