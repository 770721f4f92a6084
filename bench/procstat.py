"""CPU use of processes and of the whole machine, from /proc, so every scenario can say where
the cores went while it ran (the broker, receivers and the worker share one machine)."""

from __future__ import annotations

import os
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int, thread: bool = False) -> float:
    """User + system CPU seconds of ``pid`` (all its threads; with ``thread``, only its main
    thread: the one that runs Python's event loop); 0 once it is gone."""
    path = f"/proc/{pid}/task/{pid}/stat" if thread else f"/proc/{pid}/stat"
    try:
        text = Path(path).read_text()
    except OSError:
        return 0.0
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot."""
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in cpu]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already inside user
    return total - idle, total


def children(pid: int) -> list[int]:
    """Direct children of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def broker_pid() -> int | None:
    """The local broker (Tansu, or an Apache Kafka JVM) started by this process, if any."""
    for pid in children(os.getpid()):
        if "tansu" in command_name(pid) or b"kafka.Kafka" in _cmdline(pid):
            return pid
    return None


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


class CpuMeter:
    """Cores used by named groups of processes, and by the machine, between start and stop.

    ``others`` is the machine's busy time not accounted for by the named processes nor this
    one: other work on the machine while the scenario ran (noise, on a shared machine).
    Each group named ``worker...`` also gets ``<name>_main_thread``: a Python process cannot
    use more than one core there, so 1.0 means that worker is CPU-bound.
    """

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = {name: pids for name, pids in groups.items() if pids}
        if not any(os.getpid() in pids for pids in self.groups.values()):
            self.groups["bench"] = [os.getpid()]
        self.threads = {
            f"{name}_main_thread": pids
            for name, pids in self.groups.items()
            if name.startswith("worker")
        }
        self._start: tuple[float, dict[str, float], tuple[int, int]] | None = None

    def _sample(self) -> dict[str, float]:
        found = {name: sum(process_cpu_s(p) for p in pids) for name, pids in self.groups.items()}
        for name, pids in self.threads.items():
            found[name] = sum(process_cpu_s(p, thread=True) for p in pids)
        return found

    def start(self) -> None:
        self._start = (time.monotonic(), self._sample(), machine_ticks())

    def stop(self) -> dict[str, float]:
        """Cores used by each group (1.0 = one core busy all the time)."""
        assert self._start is not None, "start() first"
        started, before, (busy0, total0) = self._start
        wall = max(time.monotonic() - started, 1e-6)
        after = self._sample()
        busy1, total1 = machine_ticks()
        cores = os.cpu_count() or 1
        used = {name: round((after[name] - before[name]) / wall, 2) for name in after}
        machine = cores * (busy1 - busy0) / max(total1 - total0, 1)
        used["machine"] = round(machine, 2)
        ours = sum(v for k, v in used.items() if k in self.groups)
        used["others"] = round(max(machine - ours, 0), 2)
        used["cores"] = cores
        return used


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of ``pid`` (default: this process) now (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")
