"""Choosing what a redrive sends: checkpoints, deleted and inactive subscriptions, a delivery
dead-lettered twice; the task written again; time filters."""

from __future__ import annotations

import pytest

from worker.cli.common import CommandError
from worker.cli.dlq import parse_time
from worker.dlq.redrive import plan, redriven_task
from worker.dlq.store import Filter, Letter
from worker.model import DeadLetter, DeliveryTask, RedriveMark
from worker.subscriptions.model import Status, Subscription


def task(delivery: str, sub: str = "sub_a", **kw) -> DeliveryTask:
    return DeliveryTask(delivery, sub, "acme", f"evt_{delivery}", "deal.updated", b"{}", **kw)


def letter(offset: int, delivery: str, sub: str = "sub_a", marked: bool = False) -> Letter:
    mark = RedriveMark(0, offset, delivery, sub, "rd_old", 1) if marked else None
    return Letter(0, offset, DeadLetter(task(delivery, sub), "client_error", 1, 1000), mark)


def subs(**statuses: Status):
    table = {
        sub_id: Subscription(sub_id, "acme", "https://x.example", ("*",), (), status=s)
        for sub_id, s in statuses.items()
    }
    return table.get


def test_skips_checkpointed_letters_unless_forced():
    letters = [letter(0, "m0", marked=True), letter(1, "m1")]
    chosen = plan(letters, subs(sub_a=Status.ACTIVE), force=False)
    assert [x.offset for x in chosen.send] == [1] and chosen.already_redriven == 1
    forced = plan(letters, subs(sub_a=Status.ACTIVE), force=True)
    assert [x.offset for x in forced.send] == [0, 1] and forced.already_redriven == 0


def test_deleted_subscriptions_are_skipped_and_counted():
    chosen = plan([letter(0, "m0", "gone"), letter(1, "m1")], subs(sub_a=Status.ACTIVE), force=True)
    assert [x.offset for x in chosen.send] == [1] and chosen.deleted == {"gone": 1}


def test_inactive_subscriptions_are_reported():
    chosen = plan([letter(0, "m0")], subs(sub_a=Status.TOO_MANY_ERRORS), force=False)
    assert chosen.inactive == {"sub_a": "TOO_MANY_ERRORS"}


def test_a_delivery_dead_lettered_twice_is_sent_once_at_its_newest_letter():
    letters = [letter(0, "m0"), letter(1, "m1"), letter(2, "m0")]
    chosen = plan(letters, subs(sub_a=Status.ACTIVE), force=True)
    assert [x.offset for x in chosen.send] == [1, 2] and chosen.superseded == 1


def test_a_marked_newest_letter_covers_the_older_letters_of_its_delivery():
    # Re-sent (or redriven) at its newest letter: a later redrive sends none of its letters.
    letters = [letter(0, "m0"), letter(1, "m1"), letter(2, "m0", marked=True)]
    chosen = plan(letters, subs(sub_a=Status.ACTIVE), force=False)
    assert [x.offset for x in chosen.send] == [1]
    assert (chosen.already_redriven, chosen.superseded) == (1, 1)
    forced = plan(letters, subs(sub_a=Status.ACTIVE), force=True)
    assert [x.offset for x in forced.send] == [1, 2] and forced.superseded == 1


def test_redriven_task_keeps_identity_and_resets_the_attempts():
    old = task("m0", seq=41, attempt=5, hop=3, due_ms=9, last_status=503, last_error="x")
    new = redriven_task(old, "rd_1", 7)
    assert (new.delivery_id, new.body, new.subscription_id) == ("m0", b"{}", "sub_a")
    assert (new.seq, new.attempt, new.due_ms, new.last_status, new.last_error) == (
        -1,
        0,
        0,
        None,
        None,
    )
    assert new.hop == 4 and new.redrive_id == "rd_1" and new.created_ms == 7
    assert old.attempt == 5  # a copy, not a mutation


def test_filter_matches_on_every_field():
    dead = DeadLetter(task("m0"), "retries_exhausted", 8, 5_000)
    assert Filter().matches(dead)
    assert Filter(subscription="sub_a", workspace="acme", reason="retries_exhausted").matches(dead)
    assert not Filter(reason="client_error").matches(dead)
    assert Filter(since_ms=5_000, until_ms=5_001).matches(dead)
    assert not Filter(since_ms=5_001).matches(dead)
    assert not Filter(until_ms=5_000).matches(dead)


def test_parse_time_takes_durations_and_iso_times():
    assert parse_time("2h", 10_000_000) == 10_000_000 - 7_200_000
    assert parse_time("2026-11-22T10:00:00Z", 0) == 1_795_341_600_000
    assert parse_time("2026-11-22T10:00:00", 0) == 1_795_341_600_000
    with pytest.raises(CommandError, match="not a time"):
        parse_time("yesterday", 0)
