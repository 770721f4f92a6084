"""Which network destinations a delivery may reach (SSRF guard).

Checked at connect time, on the addresses DNS actually returned, so a name that resolves
to a private address, or re-binds between checks, is refused. Numeric host spellings
(``2130706433``, ``0x7f.1``) go through the same resolver and are refused the same way.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

__all__ = ["BlockedDestination", "GuardedResolver", "is_public_address"]

# Ranges that ipaddress' is_global does not exclude but no webhook should reach.
_EXTRA_BLOCKED = tuple(
    ipaddress.ip_network(n)
    for n in ("100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "240.0.0.0/4", "0.0.0.0/8")
)


class BlockedDestination(OSError):
    """The URL's host resolves only to addresses that deliveries may not reach."""


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_multicast or not ip.is_global:
        return False
    return not any(ip in net for net in _EXTRA_BLOCKED if net.version == ip.version)


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then drops non-public addresses."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = DefaultResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            results = await self._inner.resolve(host, port, family)
        except OSError as exc:
            raise OSError(f"DNS lookup failed for {host}: {exc}") from exc
        if self._allow_private:
            return results
        allowed = [r for r in results if is_public_address(r["host"])]
        if not allowed:
            raise BlockedDestination(f"{host} resolves to a non-public address")
        return allowed

    async def close(self) -> None:
        await self._inner.close()

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"GuardedResolver(allow_private={self._allow_private})"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
