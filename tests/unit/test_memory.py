"""The heap settled after start-up: its objects out of the collector's walks, and what survives
each full collection frozen, with a whole walk now and then for the cycles that froze."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from worker.memory import FreezeAfterFull, release_free_memory, settle_heap


class Node:
    other: Node | None = None


@pytest.fixture
def settled() -> Iterator[FreezeAfterFull]:
    """A settled heap with automatic collections off: only the test's own collections run."""
    enabled = gc.isenabled()
    gc.disable()
    undo = settle_heap()
    try:
        yield next(cb for cb in gc.callbacks if isinstance(cb, FreezeAfterFull))
    finally:
        undo()
        if enabled:
            gc.enable()


def tracked(obj: object) -> bool:
    """Whether the collector's walks see ``obj`` (frozen objects are not in its lists)."""
    return any(o is obj for o in gc.get_objects())


def test_settle_heap_freezes_what_start_up_built() -> None:
    old: list[object] = []  # built before: frozen, no collection walks it
    undo = settle_heap()
    try:
        fresh: list[object] = []  # built after: walked as usual
        assert not tracked(old)
        assert tracked(fresh)
        release_free_memory()  # still safe after a freeze
    finally:
        undo()
    assert FreezeAfterFull not in {type(cb) for cb in gc.callbacks}


def test_a_full_collection_freezes_what_survived_it(settled: FreezeAfterFull) -> None:
    kept = [Node() for _ in range(1000)]
    before = gc.get_freeze_count()
    assert tracked(kept) and tracked(kept[0])
    gc.collect()
    assert not tracked(kept) and not tracked(kept[0])
    assert gc.get_freeze_count() >= before + 1001
    fresh = Node()  # what comes after is walked again
    assert tracked(fresh)


def test_a_cycle_that_froze_alive_dies_at_the_next_whole_walk(settled: FreezeAfterFull) -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    gc.collect()  # alive: frozen
    del a, b  # now garbage, but a cycle: reference counting cannot free it
    assert gone() is not None
    while (settled.full + 1) % settled.whole_every:
        gc.collect()  # walks only what came since the last freeze
        assert gone() is not None
    gc.collect()  # the whole walk
    assert gone() is None


def test_garbage_cycles_made_since_the_last_freeze_die_at_once(settled: FreezeAfterFull) -> None:
    gc.collect()
    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    assert (settled.full + 1) % settled.whole_every  # the next is not a whole walk
    gc.collect()
    assert gone() is None
