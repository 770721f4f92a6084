"""``--ordering``, ``--max-in-flight`` and the older ``--ordered``/``--unordered`` flags."""

from __future__ import annotations

import pytest

from worker.cli.main import build_parser
from worker.cli.subs import changes_from_args
from worker.subscriptions.edit import UNSET, apply_changes
from worker.subscriptions.model import SecretEntry, Subscription
from worker.subscriptions.store import InvalidSubscription


def changes(*flags: str):
    args = build_parser().parse_args(["subs", "update", "sub_1", *flags])
    return changes_from_args(args)


def test_the_old_flags_are_the_scopes_they_always_meant():
    assert changes("--ordered").ordering == "endpoint"
    assert changes("--unordered").ordering == "none"
    assert changes("--ordering", "key").ordering == "key"
    assert changes().ordering is UNSET and changes().max_in_flight is UNSET


@pytest.mark.parametrize(
    "flags",
    [
        ("--unordered", "--ordering", "key"),
        ("--ordered", "--ordering", "none"),
        ("--ordered", "--unordered"),
        ("--ordering", "sideways"),
    ],
)
def test_conflicting_or_unknown_ordering_is_a_usage_error(flags, capsys):
    with pytest.raises(SystemExit) as exc:
        changes(*flags)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_max_in_flight_is_from_1_to_100():
    assert changes("--max-in-flight", "100").max_in_flight == 100
    for bad in ("0", "101"):
        with pytest.raises(InvalidSubscription, match="--max-in-flight must be from 1 to 100"):
            changes("--max-in-flight", bad)


def test_setting_a_scope_keeps_ordered_consistent():
    old = Subscription("s", "w", "https://x", ("*",), (SecretEntry("whsec_x"),), ordered=True)
    assert old.scope == "endpoint"
    loose = apply_changes(old, changes("--ordering", "none"))
    assert (loose.ordered, loose.scope, loose.in_flight_cap) == (False, "none", None)
    keyed = apply_changes(loose, changes("--ordering", "key", "--max-in-flight", "5"))
    assert (keyed.ordered, keyed.scope, keyed.in_flight_cap) == (True, "key", 5)
