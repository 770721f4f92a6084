"""How long a consumer loop naps when a poll returned nothing.

The loops poll librdkafka without blocking (the event loop must keep running the HTTP
attempts), so an empty poll is followed by a nap, and the nap is latency: a record that
arrives during it waits for its end. While records keep coming the nap is 1 ms; after about
a tenth of a second without any it grows to 5 ms, so an idle worker wakes 200 times a second,
not 1,000 (bench scenario D: the 5 ms naps cost its p50 about 6 ms).
"""

from __future__ import annotations

__all__ = ["IdlePacer"]

BUSY_NAP_S = 0.001
IDLE_NAP_S = 0.005
QUIET_AFTER = 100  # empty polls in a row before the loop counts as idle


class IdlePacer:
    """``pause(got)`` after each poll: 0 when it returned records, else the nap to take."""

    def __init__(self) -> None:
        self._empty = 0

    def pause(self, got: bool) -> float:
        if got:
            self._empty = 0
            return 0.0
        self._empty += 1
        return BUSY_NAP_S if self._empty <= QUIET_AFTER else IDLE_NAP_S
