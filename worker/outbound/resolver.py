"""Host lookups for deliveries that one tenant's DNS outage cannot turn into everyone's.

The system's ``getaddrinfo`` runs in a thread pool (libuv's has four threads under uvloop,
and lets only two slow jobs run at once), so a couple of lookups hanging on a customer's dead
name servers stall every other delivery's lookup. This resolver asks DNS itself through
c-ares (aiodns: its own sockets on the event loop, ``/etc/hosts`` and ``resolv.conf`` read
as the system does, or ``WEBHOOK_DNS_SERVERS``), and bounds what a bad name can cost:

* each lookup has its own deadline (:data:`LOOKUP_TIMEOUT_S`, c-ares retrying inside it);
* one lookup per name at a time: concurrent deliveries to a name share it (per-host cap);
* at most :data:`PER_TENANT_LOOKUPS` lookups in flight per workspace, and
  :data:`MAX_LOOKUPS` in all: a workspace with many dead names waits for its own;
* answers are reused for :data:`DNS_TTL_S`, failures for :data:`NEGATIVE_TTL_S` (a dead name
  is not asked again by every retry).

Only addresses the destination policy permits are returned (BlockedDestination when none is);
the client checks the address again as it connects.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time

import aiodns

from worker.outbound.destinations import BlockedDestination, DestinationPolicy, refused

__all__ = [
    "DNS_TTL_S",
    "LOOKUP_TIMEOUT_S",
    "MAX_LOOKUPS",
    "NEGATIVE_TTL_S",
    "PER_TENANT_LOOKUPS",
    "Resolver",
]

LOOKUP_TIMEOUT_S = 5.0
LOOKUP_TRIES = 2  # c-ares' own tries (per name server) inside the deadline
DNS_TTL_S = 10.0
NEGATIVE_TTL_S = 5.0
PER_TENANT_LOOKUPS = 8
MAX_LOOKUPS = 256
CACHE_SIZE = 100_000


@dataclasses.dataclass(frozen=True, slots=True)
class _Answer:
    expires: float
    addresses: tuple[str, ...] = ()
    error: str = ""  # the failure, when the lookup failed
    blocked: bool = False  # the failure is a refused destination


class Resolver:
    """``await resolve(host, tenant)``: the permitted addresses of ``host``. Create and use
    inside one running event loop; ``close()`` at the end."""

    def __init__(
        self,
        policy: DestinationPolicy,
        *,
        timeout_s: float = LOOKUP_TIMEOUT_S,
        per_tenant: int = PER_TENANT_LOOKUPS,
        max_lookups: int = MAX_LOOKUPS,
        ttl_s: float = DNS_TTL_S,
        negative_ttl_s: float = NEGATIVE_TTL_S,
    ) -> None:
        self._policy = policy
        self._timeout_s = timeout_s
        self._per_tenant = per_tenant
        self._ttl_s = ttl_s
        self._negative_ttl_s = negative_ttl_s
        self._all = asyncio.Semaphore(max_lookups)
        self._tenants: dict[str, asyncio.Semaphore] = {}
        self._cache: dict[str, _Answer] = {}
        self._pending: dict[str, asyncio.Task[_Answer]] = {}
        self._dns: aiodns.DNSResolver | None = None

    async def resolve(self, host: str, tenant: str = "") -> list[str]:
        """The permitted addresses ``host`` names: BlockedDestination when it names none,
        OSError when the lookup fails or times out."""
        answer = self._cache.get(host)
        if answer is None or answer.expires <= time.monotonic():
            task = self._pending.get(host)
            if task is None:
                task = asyncio.ensure_future(self._lookup(host, tenant))
                self._pending[host] = task
                task.add_done_callback(lambda _: self._pending.pop(host, None))
            answer = await asyncio.shield(task)
        if answer.blocked:
            raise BlockedDestination(answer.error)
        if answer.error:
            raise OSError(answer.error)
        return list(answer.addresses)

    async def close(self) -> None:
        for task in list(self._pending.values()):
            task.cancel()
        if self._dns is not None:
            await self._dns.close()
            self._dns = None

    async def _lookup(self, host: str, tenant: str) -> _Answer:
        semaphore = self._tenants.get(tenant)
        if semaphore is None:
            if len(self._tenants) >= CACHE_SIZE:
                self._tenants = {t: s for t, s in self._tenants.items() if s.locked()}
            semaphore = self._tenants[tenant] = asyncio.Semaphore(self._per_tenant)
        async with semaphore, self._all:
            answer = await self._ask(host)
        ttl = self._negative_ttl_s if answer.error and not answer.blocked else self._ttl_s
        answer = dataclasses.replace(answer, expires=time.monotonic() + ttl)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[host] = answer
        return answer

    async def _ask(self, host: str) -> _Answer:
        if self._dns is None:
            servers = list(self._policy.dns_servers) or None
            self._dns = aiodns.DNSResolver(
                nameservers=servers, timeout=self._timeout_s / LOOKUP_TRIES, tries=LOOKUP_TRIES
            )
        try:
            async with asyncio.timeout(self._timeout_s):
                result = await self._dns.getaddrinfo(
                    host, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM
                )
        except TimeoutError:
            return _Answer(0.0, error=f"DNS lookup for {host} timed out")
        except aiodns.error.DNSError as exc:
            reason = exc.args[1] if len(exc.args) > 1 else exc
            return _Answer(0.0, error=f"DNS lookup failed for {host}: {reason}")
        found = list(dict.fromkeys(node.addr[0].decode() for node in result.nodes))
        if not found:
            return _Answer(0.0, error=f"DNS lookup failed for {host}: no addresses")
        permitted = tuple(a for a in found if self._policy.permits(a))
        if not permitted:
            return _Answer(
                time.monotonic() + self._ttl_s, error=str(refused(host, found[0])), blocked=True
            )
        return _Answer(0.0, permitted)
