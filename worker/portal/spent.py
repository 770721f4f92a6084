"""Opening a portal link once, across replicas: the ``portal-links`` topic (compacted, one
partition, keyed by the link's nonce) in one total order. Opening writes a claim (acknowledged
by the broker) and waits until this replica's follower reads that nonce back: the first
claim in the topic wins, every later one (a second tab, another replica, a replay) loses."""

from __future__ import annotations

import logging
import secrets
import threading
import time

from confluent_kafka import Producer

from worker.codec.avro import AvroCodec
from worker.errors import BackendError
from worker.kafka.writes import produce_acked
from worker.portal.links import PortalLink

__all__ = ["SCHEMA", "SpentLinks", "SpentUnknown"]

log = logging.getLogger(__name__)
SCHEMA = "PortalLinkSpent"
_PRUNE_EVERY = 1000


class SpentUnknown(BackendError):
    """The claim was written but not read back in time: whether it won is unknown."""


class SpentLinks:
    """The nonces of opened links (apply the topic with :meth:`apply`), and :meth:`spend`."""

    def __init__(self, producer: Producer, topic: str, avro: AvroCodec) -> None:
        self._producer = producer
        self._topic = topic
        self._avro = avro
        self._first: dict[str, tuple[str, int]] = {}  # nonce -> (winning claim, expires_ms)
        self._changed = threading.Condition()
        self._applied = 0
        self.skipped = 0

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None or value is None:
            return  # a link's record only goes once the link has expired
        try:
            raw = self._avro.decode_as(SCHEMA, value)
        except Exception as exc:
            self.skipped += 1
            log.error("skipping unreadable portal-links record %r: %s", key[:80], exc)
            return
        with self._changed:
            self._first.setdefault(raw["nonce"], (raw["claim"], raw["expires_ms"]))
            self._applied += 1
            if self._applied % _PRUNE_EVERY == 0:
                self._prune()
            self._changed.notify_all()

    def spent(self, nonce: str) -> bool:
        with self._changed:
            return nonce in self._first

    def spend(self, link: PortalLink, timeout_s: float = 10.0) -> bool:
        """True when this call opened ``link`` first (everywhere); False when it was already
        opened. Raises :class:`SpentUnknown` or ``RuntimeError`` (the broker refused)."""
        if self.spent(link.nonce):
            return False
        claim = secrets.token_hex(16)
        now = int(time.time() * 1000)
        record = {
            "nonce": link.nonce,
            "claim": claim,
            "workspace": link.workspace,
            "token_id": link.token_id,
            "expires_ms": link.expires_ms,
            "spent_ms": now,
        }
        produce_acked(
            self._producer,
            self._topic,
            self._avro.encode(SCHEMA, record),
            link.nonce.encode(),
            timeout_s,
        )
        with self._changed:
            if not self._changed.wait_for(lambda: link.nonce in self._first, timeout_s):
                raise SpentUnknown(f"the portal-links topic did not return link {link.nonce}")
            return self._first[link.nonce][0] == claim

    def _prune(self) -> None:
        """Forget links that expired a minute ago or more (they are refused as expired)."""
        cutoff = int(time.time() * 1000) - 60_000
        for nonce in [n for n, (_, exp) in self._first.items() if exp < cutoff]:
            del self._first[nonce]
