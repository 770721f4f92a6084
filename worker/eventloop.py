"""The event loop of long-running commands: uvloop, unless WEBHOOK_EVENT_LOOP=asyncio.

uvloop (libuv, in C) runs the dispatcher's many small callbacks and socket writes with less
CPU per delivery than asyncio's pure-Python loop; the benchmark measures both
(docs/performance.md). Where uvloop is not installed (Windows), asyncio's own loop runs.

:func:`answered` counts HTTP answers whose attempt has not resumed yet (per thread: each
thread runs a loop of its own). A task woken by an answer runs at the loop's next pass, after
the steps queued before it: the router's and the dispatcher's, each a time slice of records
(2 ms). While an answer waits, those slices end after 0.5 ms
(:class:`worker.kafka.slices.Budget`), so an attempt's next request goes out after about 1 ms
of their work instead of 4.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["Answered", "answered", "loop_factory", "run"]

T = TypeVar("T")


class Answered:
    """How many answered attempts wait to resume on this thread's loop (see the module's
    docstring)."""

    __slots__ = ("waiting",)

    def __init__(self) -> None:
        self.waiting = 0


_here = threading.local()


def answered() -> Answered:
    """This thread's :class:`Answered`."""
    try:
        found: Answered = _here.answered
    except AttributeError:
        found = _here.answered = Answered()
    return found


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of loop ``name`` (``uvloop`` or ``asyncio``); None means asyncio's own."""
    if name != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], loop: str = "uvloop") -> T:
    """``asyncio.run(main)`` on the loop named ``loop``."""
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        return runner.run(main)
