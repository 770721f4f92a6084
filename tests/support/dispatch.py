"""The dispatcher's state pieces, built for unit tests that never touch a broker."""

from __future__ import annotations

from worker.config import Settings
from worker.dispatch.clock import Clock
from worker.dispatch.dedupe import Settled
from worker.dispatch.disabling import FailureTracker
from worker.dispatch.partitions import Partitions
from worker.kafka.topics import Topics


def partitions() -> Partitions:
    """Partitions with no codec or reader: for lane state only (no assignment)."""

    def no_reader():  # pragma: no cover - these tests never assign
        raise AssertionError("no reads here")

    return Partitions(
        topics=Topics.from_settings(Settings.from_env({})),
        codec=None,  # type: ignore[arg-type]
        make_reader=no_reader,
        settled=Settled(0),
        clock=Clock(),
        failures=FailureTracker(max_failures=0, max_failing_ms=0, disable=lambda s, r: None),
        lookup=lambda sub_id: None,
    )
