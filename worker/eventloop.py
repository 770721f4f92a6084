"""The event loop of long-running commands: uvloop, unless WEBHOOK_EVENT_LOOP=asyncio.

uvloop (libuv, in C) runs the dispatcher's many small callbacks and socket writes with less
CPU per delivery than asyncio's pure-Python loop; the benchmark measures both
(docs/performance.md). Where uvloop is not installed (Windows), asyncio's own loop runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["loop_factory", "run"]

T = TypeVar("T")


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
