"""The heap settled after start-up: its objects out of the collector's walks."""

from __future__ import annotations

import gc

from worker.memory import release_free_memory, settle_heap


def test_settle_heap_freezes_what_start_up_built() -> None:
    old: list[object] = []  # built before: frozen, no collection walks it
    try:
        settle_heap()
        fresh: list[object] = []  # built after: walked as usual
        tracked = gc.get_objects()
        assert not any(o is old for o in tracked)
        assert any(o is fresh for o in tracked)
        release_free_memory()  # still safe after a freeze
    finally:
        gc.unfreeze()
