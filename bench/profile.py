"""Hot spots from py-spy's collapsed stacks (``--format raw``): share of the samples in which
a function is running itself (``self``) and in which it is on the stack (``total``).

    python -m bench.profile bench/profiles/scenario_a.txt [N]
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(.*?) \((.*?)(?::\d+)?\)$")
ROOT = Path(__file__).resolve().parents[1]
# Leaves that are a thread waiting, not working: py-spy pauses the process to sample it, which
# hides the OS's idle state, so these are counted apart (the table follower's consume() with a
# timeout, the broker probe's Event.wait).
WAITS = {"Condition.wait (threading.py)", "CompactedFollower._run (worker/kafka/compacted.py)"}


def _function(frame: str) -> str:
    """``run (/x/lib/python3.11/asyncio/runners.py:118)`` -> ``run (asyncio/runners.py)``."""
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    name, where = match.groups()
    for marker in ("site-packages/", "/lib/python3.11/", str(ROOT) + "/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where})"


def _area(function: str) -> str:
    """The file (ours) or the package (libraries) a function belongs to."""
    where = function.rsplit(" (", 1)[-1].rstrip(")")
    return where if where.startswith("worker/") else where.split("/", 1)[0]


def hot_spots(path: Path, top: int = 15) -> dict[str, Any]:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    by_file: Counter[str] = Counter()
    samples = waiting = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(f) for f in stack.split(";") if f]
        if not frames:
            continue
        if frames[-1] in WAITS:
            waiting += count
            continue
        samples += count
        own[frames[-1]] += count
        by_file[_area(frames[-1])] += count
        for name in set(frames):
            total[name] += count

    def share(counter: Counter[str]) -> list[list[Any]]:
        return [[name, round(100 * n / samples, 1)] for name, n in counter.most_common(top)]

    return {
        "samples": samples,
        "waiting_samples_left_out": waiting,
        "self_pct": share(own),
        "self_pct_by_area": share(by_file),
        "total_pct": share(total),
    }


def main(argv: list[str]) -> int:
    result = hot_spots(Path(argv[0]), int(argv[1]) if len(argv) > 1 else 25)
    print(f"{result['samples']} samples ({result['waiting_samples_left_out']} waiting, left out)")
    for title in ("self_pct", "self_pct_by_area", "total_pct"):
        print(f"\n{title}")
        for name, pct in result[title]:
            print(f"{pct:6.1f}%  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
