"""Lower a process's CPU priority, every thread of it: the benches' way to let the worker
have the CPU first on a shared machine, where the broker and the load generator would be on
other machines in a deployment (``bench.ordering --nice``)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["lower_priority"]


def lower_priority(pid: int, nice: int) -> None:
    """Set the nice value of each thread of ``pid`` to ``nice`` (threads started later inherit
    it from their creator). Linux's ``setpriority(PRIO_PROCESS)`` sets one thread only."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.setpriority(os.PRIO_PROCESS, int(task.name), nice)
        except ProcessLookupError:  # the thread ended meanwhile
            continue
