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
freed by reference counting; only cycles among the start-up objects would never be collected.

What a full walk still visits is what the read-ahead holds (up to ``WEBHOOK_READ_AHEAD_MB`` of
tasks, two objects each, and their lanes): 40-80 ms a walk at 0.3 of that flood, about 30 walks
in 100 s, each freeing next to nothing (5-80 objects: the cycles die young). A full collection
is therefore considered after 100 middle ones instead of 10: 3 walks in the same run. (Larger
young thresholds changed nothing measurable and were not kept.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable

__all__ = ["FULL_COLLECTION_EVERY", "release_free_memory", "settle_heap"]

FULL_COLLECTION_EVERY = 100  # middle collections before a full one is considered (CPython: 10)


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


def settle_heap() -> None:
    """Once start-up is done: collect, and freeze what is left (never walked again)."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
