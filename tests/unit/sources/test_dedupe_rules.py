"""The webhook-id ledger's rule, applied to a log of marks without a broker: every replica
that applies the same log agrees on one owner per key."""

from __future__ import annotations

from typing import Any

from worker.codec.avro import AvroCodec
from worker.sources.dedupe import LEASE_MS, DedupeLedger

AVRO = AvroCodec()
WINDOW = 600_000
KEY = b"src_x msg_1"


def _ledger() -> DedupeLedger:
    return DedupeLedger(AVRO, producer=None, topic="t", window_ms=WINDOW)  # type: ignore[arg-type]


def _mark(state: str, owner: str, at_ms: int) -> bytes:
    return AVRO.encode("IncomingMark", {"state": state, "owner": owner, "at_ms": at_ms})


def _entry(ledger: DedupeLedger) -> Any:
    return ledger._entries[KEY.decode()]


def test_the_first_live_claim_wins_on_every_replica() -> None:
    log = [_mark("claimed", "a", 1000), _mark("claimed", "b", 1001), _mark("claimed", "c", 1002)]
    for _ in range(2):  # two replicas applying the same log
        ledger = _ledger()
        for value in log:
            ledger.apply(KEY, value)
        assert _entry(ledger).owner == "a" and not _entry(ledger).landed


def test_landed_holds_the_key_for_the_window() -> None:
    ledger = _ledger()
    ledger.apply(KEY, _mark("claimed", "a", 1000))
    ledger.apply(KEY, _mark("landed", "a", 1010))
    ledger.apply(KEY, _mark("claimed", "b", 1000 + LEASE_MS + 1))
    assert _entry(ledger).owner == "a" and _entry(ledger).landed
    ledger.apply(KEY, _mark("claimed", "c", 1000 + WINDOW))
    assert _entry(ledger).owner == "c" and not _entry(ledger).landed


def test_an_unlanded_claim_is_taken_over_after_the_lease_with_recovery() -> None:
    ledger = _ledger()
    ledger.apply(KEY, _mark("claimed", "a", 1000))
    ledger.apply(KEY, _mark("claimed", "b", 1000 + LEASE_MS - 1))
    assert _entry(ledger).owner == "a"
    ledger.apply(KEY, _mark("claimed", "b", 1000 + LEASE_MS))
    taken = _entry(ledger)
    assert taken.owner == "b" and taken.recover_since_ms == 1000
    # A second takeover still looks back to the first claim that never landed.
    ledger.apply(KEY, _mark("claimed", "c", 1000 + 2 * LEASE_MS))
    assert _entry(ledger).owner == "c" and _entry(ledger).recover_since_ms == 1000


def test_unreadable_marks_are_skipped() -> None:
    ledger = _ledger()
    ledger.apply(KEY, b"garbage")
    ledger.apply(None, _mark("claimed", "a", 1))
    assert ledger.skipped == 1 and not ledger._entries
