"""The process's heap: giving freed memory back, and keeping the cycle collector's pauses short.

After a burst (a flood of tasks read ahead and parked, librdkafka's buffers filled) CPython and
glibc keep the freed memory mapped, so the process's RSS stays at its peak. ``malloc_trim``
returns free heap pages; it is glibc-only and a no-op elsewhere.

CPython's cycle collector pauses the event loop while it walks a generation; a full
(generation 2) walk visits every tracked object: with the imported modules and, during a
flood, hundreds of thousands of parked tasks' and lanes' objects, 60 to 150 ms a walk at a tenth
of the issue-24 flood on the shared 2-core machine, and a dozen such walks as the heap grows by
a quarter each time. :func:`settle_heap` moves what start-up built (modules, the subscription
table) out of the collector's sight, so a full walk visits only what came after. Objects stay
freed by reference counting; cycles among them wait for a whole walk (the last paragraph).

What a full walk still visits is what the read-ahead holds (up to ``WEBHOOK_READ_AHEAD_MB`` of
tasks, two objects each, and their lanes): 40-80 ms a walk at 0.3 of that flood, about 30 walks
in 100 s, each freeing next to nothing (5-80 objects: the cycles die young). A full collection
is therefore considered after 100 middle ones instead of 10: 3 walks in the same run. (Larger
young thresholds changed nothing measurable and were not kept.)

At the flood's full size those walks still took 17-42 ms each, 5-9 of them while it parked,
each freeing nothing: what the read-ahead holds survives one walk after another. So every full
collection freezes what survived it (:class:`FreezeAfterFull`), and the next one walks only what
was promoted since, which is bounded by what was allocated since, not by the heap: 2-16 ms in
the same run, and about 90 ms for every tenth, which walks everything (below).

Frozen objects are still freed by reference counting when released; what a freeze hides is a
*cycle* among them that became garbage later (an exception and its frames, a finished task's
callbacks). Every ``WHOLE_WALK_EVERY``-th full collection therefore unfreezes everything first
and walks the whole heap, collecting such cycles, then freezes the survivors again: garbage
hidden this way lives at most that many full collections, and full collections come only with
allocation.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable

__all__ = [
    "FULL_COLLECTION_EVERY",
    "WHOLE_WALK_EVERY",
    "FreezeAfterFull",
    "release_free_memory",
    "settle_heap",
]

FULL_COLLECTION_EVERY = 100  # middle collections before a full one is considered (CPython: 10)
WHOLE_WALK_EVERY = 10  # full collections: every tenth walks the whole heap, frozen objects too


def _load_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _load_trim()


def release_free_memory() -> None:
    """Return free heap memory to the operating system, where the C library can."""
    if _TRIM is not None:
        _TRIM(0)


class FreezeAfterFull:
    """A collector callback: freeze what survives each full collection, and let every
    ``whole_every``-th walk the whole heap first (see the module's docstring).

    The collector calls it with the generation it collects: on ``start`` of such a whole walk
    it unfreezes (the walk that follows then includes the frozen objects), on ``stop`` of any
    full collection it freezes. Both only move the collector's lists from one to another.
    """

    __slots__ = ("full", "whole_every")

    def __init__(self, whole_every: int = WHOLE_WALK_EVERY) -> None:
        self.whole_every = whole_every
        self.full = 0  # full collections seen

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self.full += 1
            if self.full % self.whole_every == 0:
                gc.unfreeze()
        else:
            gc.freeze()


def settle_heap() -> Callable[[], None]:
    """Once start-up is done: collect, freeze what is left, and from then on freeze what
    survives each full collection. Returns what undoes it (for tests)."""
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    keeper = FreezeAfterFull()
    gc.callbacks.append(keeper)

    def undo() -> None:
        if keeper in gc.callbacks:
            gc.callbacks.remove(keeper)
        gc.set_threshold(young, middle, old)
        gc.unfreeze()

    return undo
