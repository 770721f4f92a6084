"""The heap settled after start-up: its objects out of the collector's walks, larger steps."""

from __future__ import annotations

import gc

from worker.memory import GC_THRESHOLDS, release_free_memory, settle_heap


def test_settle_heap_freezes_start_up_and_sets_the_thresholds() -> None:
    before = gc.get_threshold()
    old: list[object] = []  # built before: frozen, no collection walks it
    try:
        settle_heap()
        assert gc.get_threshold() == GC_THRESHOLDS
        fresh: list[object] = []  # built after: walked as usual
        tracked = gc.get_objects()
        assert not any(o is old for o in tracked)
        assert any(o is fresh for o in tracked)
        release_free_memory()  # still safe after a freeze
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
