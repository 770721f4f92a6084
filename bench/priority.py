"""Lower a process's CPU priority, every thread of it: the benches' way to let the worker
have the CPU first on a shared machine, where the broker and the load generator would be on
other machines in a deployment (``bench.ordering --nice``).

A thread's nice value weighs only against the threads of its own scheduling group. Where
Linux's autogroups are on (``/proc/sys/kernel/sched_autogroup_enabled``), each session is
such a group and the groups share a contended CPU by the group's nice value
(``/proc/PID/autogroup``, sched(7)). The broker runs in a session of its own, so lowering its
threads does not lower it against the worker: only against its own threads. Lowering its
group too was tried (autogroup nice 10): the broker, left a tenth of the contended CPU, was
fenced by its own controller 40 s into scenario 3's flood (every partition without a
leader), so the group is left alone. Scenario 3's flood producer is a child of the bench, in
the worker's group, and its nice value does weigh against the worker. :func:`pin` gives the
worker a core of its own instead (``bench.ordering --pin``), which holds whatever the groups."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["lower_priority", "pin"]


def lower_priority(pid: int, nice: int) -> None:
    """Set the nice value of each thread of ``pid`` to ``nice`` (threads started later inherit
    it from their creator). Linux's ``setpriority(PRIO_PROCESS)`` sets one thread only."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.setpriority(os.PRIO_PROCESS, int(task.name), nice)
        except ProcessLookupError:  # the thread ended meanwhile
            continue


def pin(pid: int, cpus: set[int]) -> None:
    """Let each thread of ``pid`` run only on ``cpus`` (threads started later inherit it from
    their creator, as with :func:`lower_priority`)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except ProcessLookupError:
            continue
