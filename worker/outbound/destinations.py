"""Which network destinations a delivery may reach (SSRF guard).

Two checks stand between a URL and a socket, so that no spelling and no DNS answer reaches a
non-public address unless the settings allow it:

* the resolver (:class:`GuardedResolver`) keeps only the permitted addresses DNS returns,
  and refuses the name when none is left or the lookup fails (fail closed);
* the delivery client (:mod:`worker.outbound.client`) checks, with
  :meth:`DestinationPolicy.check`, the exact address each connection is opened to. IP-literal
  hosts never reach the resolver, so this is the check that sees every connection, and since
  it runs on the address being connected, a DNS answer that changes between an earlier check
  and the connect (rebinding) cannot slip through.

Legacy numeric IPv4 spellings (``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``) mean
what ``inet_aton`` makes of them; :func:`literal_address` turns them into the address they name,
and the sender rewrites such a URL to that address (as browsers do) before connecting.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import AsyncResolver, ThreadedResolver

from worker.config import ConfigError, Network, Settings

__all__ = [
    "BlockedDestination",
    "DestinationPolicy",
    "GuardedResolver",
    "is_public_address",
    "literal_address",
    "refused",
    "resolve_destination",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Everything a webhook may not reach, listed rather than left to ``is_global`` (whose ranges
# differ between Python patch releases). ``not is_global`` still applies as a backstop.
_BLOCKED_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host
        "10.0.0.0/8",  # RFC 1918
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
        "172.16.0.0/12",  # RFC 1918
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # TEST-NET-1 (documentation)
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "192.168.0.0/16",  # RFC 1918
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2 (documentation)
        "203.0.113.0/24",  # TEST-NET-3 (documentation)
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and 255.255.255.255 broadcast
    )
)
_BLOCKED_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/96",  # unspecified, loopback and the deprecated IPv4-compatible addresses
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments (Teredo, ORCHIDv2, ...)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# A host whose last label is a number (WHATWG URL: "ends in a number") must be an IPv4
# address: one to four parts in decimal, octal (leading 0) or hex.
_NUMBER = re.compile(r"0x[0-9a-f]*|[0-9]+", re.I)
_NUMERIC_HOST = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}\.?", re.I)


class BlockedDestination(OSError):
    """The destination is an address (or a name resolving to one) deliveries may not reach."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for: IPv4-mapped, 6to4, or NAT64."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _effective(address: str) -> IPAddress:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        return _embedded_ipv4(ip) or ip
    return ip


def _is_public(ip: IPAddress) -> bool:
    if not ip.is_global or ip.is_multicast:
        return False
    blocked = _BLOCKED_V4 if isinstance(ip, ipaddress.IPv4Address) else _BLOCKED_V6
    return not any(ip in net for net in blocked)


def is_public_address(address: str) -> bool:
    """Whether ``address`` (an IP in canonical text form) is a public unicast address.

    IPv6 addresses that carry an IPv4 one (``::ffff:127.0.0.1``, 6to4, NAT64) are judged by
    the IPv4 address they reach.
    """
    return _is_public(_effective(address))


def literal_address(host: str) -> str | None:
    """The canonical address a numeric host names, or None when ``host`` is a name.

    ``2130706433``, ``0x7f.1``, ``0177.0.0.1`` and ``127.1`` all give ``127.0.0.1`` (what
    ``getaddrinfo`` would connect to); ``[::FFFF:127.0.0.1]`` gives ``::ffff:7f00:1``.
    ValueError for a host that ends in a number but is no address (``999.1.1.1``,
    ``1.2.3.4.5``, ``foo.123``): no DNS name ends in one.
    """
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    if not _NUMBER.fullmatch(bare.rstrip(".").rsplit(".", 1)[-1]):
        return None
    try:
        if _NUMERIC_HOST.fullmatch(bare):
            return socket.inet_ntoa(socket.inet_aton(bare.rstrip(".")))
    except OSError:
        pass
    raise ValueError(f"not a valid IPv4 address: {host}")


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    """What deliveries (and challenges) may connect to, and which DNS servers name it.

    Public unicast addresses always; others only with ``allow_private`` (everything) or
    inside one of ``allowed_networks``. ``dns_servers`` empty means the system resolver.
    """

    allow_private: bool = False
    allowed_networks: tuple[Network, ...] = ()
    dns_servers: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> DestinationPolicy:
        return cls(settings.allow_private_networks, settings.allowed_networks, settings.dns_servers)

    def permits(self, address: str) -> bool:
        if self.allow_private:
            return True
        ip = _effective(address)
        if _is_public(ip):
            return True
        return any(ip.version == net.version and ip in net for net in self.allowed_networks)

    def check(self, host: str, address: str) -> None:
        """BlockedDestination unless ``address`` (what ``host`` names) is permitted."""
        if not self.permits(address):
            raise refused(host, address)


def refused(host: str, address: str) -> BlockedDestination:
    named = "" if host == address else f" (from {host})"
    return BlockedDestination(
        f"destination {address}{named} is not publicly routable and not in WEBHOOK_ALLOWED_NETWORKS"
    )


class GuardedResolver(AbstractResolver):
    """Resolves with the system's ``getaddrinfo`` (whether or not aiodns is installed), or
    with aiodns asking ``dns_servers`` when set, and keeps the permitted addresses:
    BlockedDestination when none is, OSError when the lookup fails.

    Dropping rather than refusing a mixed answer keeps ``localhost`` (127.0.0.1 and ::1)
    usable with ``WEBHOOK_ALLOWED_NETWORKS=127.0.0.1/32``; no dropped address is connected.
    """

    def __init__(self, policy: DestinationPolicy) -> None:
        self._policy = policy
        self._inner: AbstractResolver
        if not policy.dns_servers:
            self._inner = ThreadedResolver()
            return
        try:
            self._inner = AsyncResolver(nameservers=list(policy.dns_servers))
        except RuntimeError:  # aiohttp's way of saying aiodns is missing
            raise ConfigError("WEBHOOK_DNS_SERVERS needs the aiodns package") from None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            results = await self._inner.resolve(host, port, family)
        except OSError as exc:
            raise OSError(f"DNS lookup failed for {host}: {exc.strerror or exc}") from exc
        if not results:
            raise OSError(f"DNS lookup failed for {host}: no addresses")
        allowed = [r for r in results if self._policy.permits(r["host"])]
        if not allowed:
            raise refused(host, results[0]["host"])
        return allowed

    async def close(self) -> None:
        await self._inner.close()


async def resolve_destination(host: str, port: int, policy: DestinationPolicy) -> list[str]:
    """The addresses ``host`` names that ``policy`` permits (as a delivery would connect to):
    BlockedDestination if there are none, OSError when the lookup fails. For checks that
    open no connection (subscription creation)."""
    try:
        literal = literal_address(host)
    except ValueError as exc:
        raise BlockedDestination(str(exc)) from None
    if literal is not None:
        policy.check(host, literal)
        return [literal]
    resolver = GuardedResolver(policy)
    try:
        results = await resolver.resolve(host, port, socket.AF_UNSPEC)
    finally:
        await resolver.close()
    return [r["host"] for r in results]
