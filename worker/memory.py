"""Giving freed heap memory back to the operating system.

After a burst (a flood of tasks read ahead and parked, librdkafka's buffers filled) CPython and
glibc keep the freed memory mapped, so the process's RSS stays at its peak. ``malloc_trim``
returns free heap pages; it is glibc-only and a no-op elsewhere.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

__all__ = ["release_free_memory"]


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
