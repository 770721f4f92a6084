"""Child processes of the local brokers: free ports, a child that dies with its parent, and a
stop that escalates from SIGTERM to SIGKILL."""

from __future__ import annotations

import ctypes
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

__all__ = ["die_with_parent", "free_port", "spawn_broker", "terminate"]

_PR_SET_PDEATHSIG = 1
# Resolved here, not in the child: between fork and exec only the prctl call itself runs.
_LIBC = ctypes.CDLL(None) if sys.platform == "linux" else None


def die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """Ask Linux to SIGTERM this (child) process when the thread that forked it exits."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago (it can be taken before it is bound)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def terminate(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL when ``proc`` has not exited within ``grace_s``."""
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def spawn_broker(command: list[str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start a broker process: output appended to ``log_path``, in a session of its own (a
    terminal's Ctrl-C reaches only us, and we stop it after draining our clients), dying with
    its parent when started from the main thread (the thread it would die with otherwise may
    end long before the broker should). ``OSError`` when it cannot be run."""
    main = threading.current_thread() is threading.main_thread()
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=die_with_parent if main else None,
        )
