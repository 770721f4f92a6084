"""The webhook-id ledger: a repeat of (source, webhook-id) lands once, across replicas and
restarts, without Kafka transactions.

Every request with a ``webhook-id`` writes a **claim** to the compacted ``incoming-dedupe``
topic (one partition: one total order) and waits until this replica's follower has applied
it. Every replica applies the log with the same rule, so all agree on the winner: the first
claim of a key wins, unless the key has **landed** or a live claim holds it. Only the winner
writes the request's record; once the broker acknowledged it, the winner writes **landed**.

Crashes: a claim whose owner died before ``landed`` holds the key for ``LEASE_MS``; a later
claim then takes over. Its owner may have written the record before dying, so the new owner
first reads the destination topic from the old claim's time (:mod:`worker.sources.recover`)
and writes the record only when it is not there. An owner never starts its record write
later than ``LEASE_MS - WRITE_TIMEOUT_MS - 2 s`` after its claim, and the write is
acknowledged or failed within ``WRITE_TIMEOUT_MS`` (the producer's ``message.timeout.ms``),
so a takeover never races a write that is still in flight (replica clocks are assumed to
agree within a second or so). A repeat that meets a live claim waits for ``landed``; past
the lease it takes over; answers 503 with Retry-After when it can do neither in time.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from worker.codec.avro import AvroCodec
from worker.kafka.acked import AckedProducer

__all__ = ["LEASE_MS", "WRITE_TIMEOUT_MS", "Claim", "DedupeLedger", "Outcome"]

log = logging.getLogger(__name__)

SCHEMA = "IncomingMark"
LEASE_MS = 15_000
WRITE_TIMEOUT_MS = 5_000
_WRITE_DEADLINE_MS = LEASE_MS - WRITE_TIMEOUT_MS - 2_000
_APPLY_TIMEOUT_S = 5.0
_MAX_LANDING_WAIT_S = 10.0


class Outcome(Enum):
    WRITE = "write"  # this request owns the key: write the record, then ``landed``
    LANDED = "landed"  # a record already landed: acknowledge, write nothing
    BUSY = "busy"  # another request holds the key and did not finish in time: 503


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: Outcome
    owner: str = ""
    claimed_ms: int = 0
    # The time of an earlier claim that never landed: look for its record before writing.
    recover_since_ms: int | None = None
    retry_after_s: int = 1

    def may_write(self, now_ms: int) -> bool:
        """Whether the record write may still start (see the module docstring)."""
        return now_ms <= self.claimed_ms + _WRITE_DEADLINE_MS


@dataclass(slots=True)
class _Entry:
    owner: str
    claimed_ms: int
    landed: bool
    recover_since_ms: int | None


class DedupeLedger:
    """The state of every key seen within the window, applied by the follower thread
    (:meth:`apply`), and the asyncio side that claims keys (:meth:`claim`)."""

    def __init__(
        self,
        avro: AvroCodec,
        producer: AckedProducer,
        topic: str,
        window_ms: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._avro = avro
        self._producer = producer
        self._topic = topic
        self._window_ms = window_ms
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._claims: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Future[_Entry]]] = {}
        self._landings: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}
        self._applied = 0
        # Owners are unique across replicas and restarts: 64 random bits, then a counter.
        self._owner_prefix = secrets.token_hex(8) + "-"
        self._owners = itertools.count()
        self.skipped = 0

    # -- the follower thread -----------------------------------------------------------------
    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Apply one mark in log order: the same rule on every replica."""
        if key is None or value is None:
            return
        try:
            mark = self._avro.decode_as(SCHEMA, value)
        except Exception as exc:
            self.skipped += 1
            log.error("skipping unreadable incoming-dedupe record: %s", exc)
            return
        name = key.decode("utf-8", "replace")
        at_ms, owner = int(mark["at_ms"]), str(mark["owner"])
        with self._lock:
            current = self._entries.get(name)
            expired = current is None or at_ms - current.claimed_ms >= self._window_ms
            if mark["state"] == "landed":
                if expired or current is None:
                    self._entries[name] = _Entry(owner, at_ms, True, None)
                else:
                    current.landed = True
                landing = self._landings.pop(name, [])
            else:
                landing = []
                if expired or current is None:
                    self._entries[name] = _Entry(owner, at_ms, False, None)
                elif not current.landed and at_ms >= current.claimed_ms + LEASE_MS:
                    since = current.recover_since_ms or current.claimed_ms
                    self._entries[name] = _Entry(owner, at_ms, False, since)
            entry = self._entries[name]
            waiter = self._claims.pop(owner, None) if mark["state"] == "claimed" else None
            self._applied += 1
            if self._applied % 10_000 == 0:
                self._forget(at_ms)
        snapshot = _Entry(entry.owner, entry.claimed_ms, entry.landed, entry.recover_since_ms)
        if waiter is not None:
            waiter[0].call_soon_threadsafe(_resolve, waiter[1], snapshot)
        for loop, future in landing:
            loop.call_soon_threadsafe(_resolve, future, None)

    def _forget(self, now_ms: int) -> None:
        horizon = now_ms - self._window_ms - LEASE_MS
        self._entries = {k: e for k, e in self._entries.items() if e.claimed_ms > horizon}

    # -- requests ----------------------------------------------------------------------------
    async def claim(self, key: str) -> Claim:
        """Decide what a request for ``key`` (``<source id> <webhook-id>``) does."""
        for _ in range(3):
            now = self._now_ms()
            with self._lock:
                current = self._entries.get(key)
                seen = None if current is None else (current.landed, current.claimed_ms)
            if seen is not None and now - seen[1] < self._window_ms:
                landed, claimed_ms = seen
                if landed:
                    return Claim(Outcome.LANDED)
                if now < claimed_ms + LEASE_MS:
                    if await self._wait_landing(key, claimed_ms + LEASE_MS - now):
                        return Claim(Outcome.LANDED)
                    if self._now_ms() < claimed_ms + LEASE_MS:
                        return Claim(Outcome.BUSY, retry_after_s=_seconds(claimed_ms, now))
            entry, owner = await self._write_claim(key)
            if entry.owner == owner:
                return Claim(Outcome.WRITE, owner, entry.claimed_ms, entry.recover_since_ms)
            if entry.landed:
                return Claim(Outcome.LANDED)
        return Claim(Outcome.BUSY, retry_after_s=LEASE_MS // 1000)

    async def landed(self, key: str, owner: str) -> None:
        """Record that ``owner``'s record was acknowledged."""
        await self._producer.send(self._topic, self._mark("landed", owner), key.encode())

    async def _write_claim(self, key: str) -> tuple[_Entry, str]:
        owner = f"{self._owner_prefix}{next(self._owners):x}"
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_Entry] = loop.create_future()
        with self._lock:
            self._claims[owner] = (loop, future)
        try:
            await self._producer.send(self._topic, self._mark("claimed", owner), key.encode())
            return await asyncio.wait_for(future, _APPLY_TIMEOUT_S), owner
        finally:
            with self._lock:
                self._claims.pop(owner, None)

    async def _wait_landing(self, key: str, wait_ms: int) -> bool:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            current = self._entries.get(key)
            if current is not None and current.landed:
                return True
            self._landings.setdefault(key, []).append((loop, future))
        try:
            await asyncio.wait_for(future, min(wait_ms / 1000, _MAX_LANDING_WAIT_S))
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                waiting = self._landings.get(key)
                if waiting is not None:
                    waiting[:] = [w for w in waiting if w[1] is not future]
                    if not waiting:
                        self._landings.pop(key, None)

    def _mark(self, state: str, owner: str) -> bytes:
        return self._avro.encode(SCHEMA, {"state": state, "owner": owner, "at_ms": self._now_ms()})

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def _resolve(future: asyncio.Future[_Entry] | asyncio.Future[None], value: object) -> None:
    if not future.done():
        future.set_result(value)  # type: ignore[arg-type]


def _seconds(claimed_ms: int, now_ms: int) -> int:
    return max(1, (claimed_ms + LEASE_MS - now_ms + 999) // 1000)
