"""The SSRF guard's rules, table-driven: every blocked range (v4 and v6), the numeric host
spellings as the real ``getaddrinfo`` reads them, the allow-list, the resolver and the socket
factory. Nothing here leaves 127.0.0.1: names resolve from /etc/hosts or not at all."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

from tests.support.listener import TcpListener
from worker.config import ConfigError, Settings, parse_networks
from worker.outbound.client import HttpSender, TransportError
from worker.outbound.destinations import (
    BlockedDestination,
    DestinationPolicy,
    GuardedResolver,
    is_public_address,
    literal_address,
    resolve_destination,
)

STRICT = DestinationPolicy()

# (address, what it is): one or more addresses in every range the guard must refuse.
NON_PUBLIC = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback, top of 127/8"),
    ("0.0.0.0", "0.0.0.0/8, reaches the local host"),
    ("0.1.2.3", "0.0.0.0/8"),
    ("10.0.0.1", "RFC 1918 10/8"),
    ("10.255.255.255", "RFC 1918 10/8"),
    ("172.16.0.1", "RFC 1918 172.16/12"),
    ("172.31.255.254", "RFC 1918 172.16/12"),
    ("192.168.0.1", "RFC 1918 192.168/16"),
    ("100.64.0.1", "CGNAT 100.64/10"),
    ("100.127.255.254", "CGNAT 100.64/10"),
    ("169.254.169.254", "link-local, cloud metadata"),
    ("169.254.0.1", "link-local"),
    ("192.0.0.8", "192.0.0.0/24 IETF"),
    ("192.0.0.170", "192.0.0.0/24 (NAT64 discovery)"),
    ("198.18.0.1", "benchmarking 198.18/15"),
    ("198.19.255.254", "benchmarking 198.18/15"),
    ("240.0.0.1", "reserved 240/4"),
    ("255.255.255.254", "reserved 240/4"),
    ("255.255.255.255", "broadcast"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast (SSDP)"),
    ("192.0.2.1", "TEST-NET-1"),
    ("198.51.100.1", "TEST-NET-2"),
    ("203.0.113.1", "TEST-NET-3"),
    ("192.88.99.1", "6to4 relay anycast"),
    ("::1", "IPv6 loopback"),
    ("::", "IPv6 unspecified"),
    ("fc00::1", "unique local fc00::/7"),
    ("fd12:3456:789a::1", "unique local fc00::/7"),
    ("fe80::1", "link-local fe80::/10"),
    ("febf:ffff::1", "link-local fe80::/10"),
    ("fec0::1", "site-local (deprecated)"),
    ("ff02::1", "IPv6 multicast"),
    ("2001:db8::1", "IPv6 documentation"),
    ("3fff::1", "IPv6 documentation (RFC 9637)"),
    ("100::1", "discard-only"),
    ("2001::1", "Teredo"),
    ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:10.0.0.1", "IPv4-mapped RFC 1918"),
    ("::ffff:169.254.169.254", "IPv4-mapped metadata"),
    ("::127.0.0.1", "IPv4-compatible (deprecated)"),
    ("64:ff9b::7f00:1", "NAT64 of 127.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "NAT64 of 169.254.169.254"),
    ("64:ff9b:1::1", "local-use NAT64"),
    ("2002:7f00:1::1", "6to4 of 127.0.0.1"),
    ("2002:c0a8:101::1", "6to4 of 192.168.1.1"),
]

PUBLIC = [
    "93.184.216.34",
    "1.1.1.1",
    "8.8.8.8",
    "100.63.255.255",  # just below CGNAT
    "100.128.0.0",  # just above CGNAT
    "172.32.0.1",  # just above 172.16/12
    "198.17.255.255",  # just below 198.18/15
    "223.255.255.254",  # just below multicast
    "2606:4700:4700::1111",
    "2a00:1450:4001::200e",
    "::ffff:1.1.1.1",  # mapped public: judged by the IPv4 address
    "64:ff9b::101:101",  # NAT64 of 1.1.1.1
]


@pytest.mark.parametrize(("address", "kind"), NON_PUBLIC)
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    assert not is_public_address(address), kind
    assert not STRICT.permits(address), kind
    with pytest.raises(BlockedDestination):
        STRICT.check(address, address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public_address(address)
    assert STRICT.permits(address)


@pytest.mark.parametrize(("address", "kind"), NON_PUBLIC)
def test_allow_private_permits_everything(address: str, kind: str) -> None:
    assert DestinationPolicy(allow_private=True).permits(address), kind


# (host as written in a URL, what it names). Each is read by the real getaddrinfo (numeric
# only, so no DNS query is sent) and must give the same address literal_address gives.
SPELLINGS = [
    ("127.0.0.1", "127.0.0.1"),
    ("2130706433", "127.0.0.1"),  # decimal
    ("0x7f000001", "127.0.0.1"),  # hex
    ("017700000001", "127.0.0.1"),  # octal
    ("0x7f.1", "127.0.0.1"),  # hex, short form
    ("0x7F.0.0.1", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"),  # octal part
    ("0177.1", "127.0.0.1"),
    ("127.1", "127.0.0.1"),  # short forms
    ("127.0.1", "127.0.0.1"),
    ("0", "0.0.0.0"),
    ("0x0", "0.0.0.0"),
    ("167772161", "10.0.0.1"),
    ("0xa9fea9fe", "169.254.169.254"),
    ("0251.0376.0251.0376", "169.254.169.254"),
    ("0xc0.0xa8.1.1", "192.168.1.1"),
    ("::1", "::1"),
    ("0:0:0:0:0:0:0:1", "::1"),
    ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
    ("::ffff:7f00:1", "::ffff:127.0.0.1"),
    ("::", "::"),
]


@pytest.mark.parametrize(("host", "names"), SPELLINGS)
def test_numeric_spellings_name_what_getaddrinfo_connects_to(host: str, names: str) -> None:
    infos = socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    resolved = {ipaddress.ip_address(info[4][0]) for info in infos}
    assert resolved == {ipaddress.ip_address(names)}
    literal = literal_address(host)
    assert literal is not None
    assert ipaddress.ip_address(literal) == ipaddress.ip_address(names)
    assert not STRICT.permits(literal)
    with pytest.raises(BlockedDestination):
        asyncio.run(resolve_destination(host, 80, STRICT))


@pytest.mark.parametrize("host", ["[::1]", "[::ffff:127.0.0.1]", "127.0.0.1."])
def test_bracketed_and_dotted_literals(host: str) -> None:
    assert literal_address(host) is not None
    assert not STRICT.permits(literal_address(host) or "")


@pytest.mark.parametrize("host", ["example.com", "localhost", "1.2.3.4.example", "0x7f.host"])
def test_names_are_not_literals(host: str) -> None:
    assert literal_address(host) is None


@pytest.mark.parametrize(
    "host", ["999.1.1.1", "1.2.3.4.5", "0x100000000", "4294967296", "a.0x7f", "host.123"]
)
def test_numeric_hosts_that_are_no_address_are_refused(host: str) -> None:
    with pytest.raises(ValueError):
        literal_address(host)
    with pytest.raises(BlockedDestination):
        asyncio.run(resolve_destination(host, 80, STRICT))


ALLOW = DestinationPolicy(allowed_networks=parse_networks("127.0.0.1/32,10.1.0.0/16,fd00::/8"))


@pytest.mark.parametrize(
    ("address", "permitted"),
    [
        ("127.0.0.1", True),
        ("::ffff:127.0.0.1", True),  # the mapped form of an allowed address
        ("127.0.0.2", False),
        ("10.1.200.3", True),
        ("10.2.0.1", False),
        ("fd00::5", True),
        ("fc00::5", False),
        ("::1", False),
        ("169.254.169.254", False),
        ("1.1.1.1", True),
    ],
)
def test_allowed_networks(address: str, permitted: bool) -> None:
    assert ALLOW.permits(address) is permitted


def test_allowed_networks_setting() -> None:
    env = {"WEBHOOK_ALLOWED_NETWORKS": " 127.0.0.1/32, 10.1.0.0/16 ,::1/128"}
    policy = DestinationPolicy.from_settings(Settings.from_env(env))
    assert policy.permits("127.0.0.1") and policy.permits("10.1.2.3") and policy.permits("::1")
    assert not policy.permits("10.2.0.1") and not policy.allow_private
    assert DestinationPolicy.from_settings(Settings.from_env({})) == STRICT


@pytest.mark.parametrize("value", ["10.1.2.3/16", "localhost", "10.0.0.0/33", "1.2.3.4/x"])
def test_invalid_cidr_is_a_one_line_config_error(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"WEBHOOK_ALLOWED_NETWORKS": f"127.0.0.1/32,{value}"})
    message = str(info.value)
    assert message.startswith("WEBHOOK_ALLOWED_NETWORKS:") and value in message
    assert "\n" not in message


@pytest.mark.parametrize("value", ["dns.example", "127.0.0.1:0", "127.0.0.1:x", "[::1]:99999"])
def test_invalid_dns_server_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="WEBHOOK_DNS_SERVERS"):
        Settings.from_env({"WEBHOOK_DNS_SERVERS": value})


def test_resolver_refuses_a_name_that_resolves_to_loopback() -> None:
    """``localhost`` comes from /etc/hosts through the real system resolver."""

    async def resolve(policy: DestinationPolicy) -> list[str]:
        resolver = GuardedResolver(policy)
        try:
            return [r["host"] for r in await resolver.resolve("localhost", 80, socket.AF_INET)]
        finally:
            await resolver.close()

    with pytest.raises(BlockedDestination, match=r"127\.0\.0\.1 \(from localhost\)"):
        asyncio.run(resolve(STRICT))
    allowed = DestinationPolicy(allowed_networks=parse_networks("127.0.0.0/8"))
    assert asyncio.run(resolve(allowed)) == ["127.0.0.1"]


def answer_ok(conn: socket.socket) -> None:
    with conn:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")


HOSTS = ["127.0.0.1", "localhost", "2130706433", "0x7f.1", "0177.0.0.1", "127.1"]
HOSTS += ["[::ffff:127.0.0.1]", "127.0.0.1."]


@pytest.mark.parametrize("host", HOSTS)
def test_sender_checks_every_spelling_at_connect_time(host: str) -> None:
    """The HTTP sender (IP literals never reach the resolver): refused without a
    connection, and the same URL delivered once the allow-list admits 127.0.0.1."""
    listener = TcpListener(answer_ok)
    url = f"http://{host}:{listener.port}/hook"

    async def post(policy: DestinationPolicy) -> int:
        sender = HttpSender(max_connections=4, destinations=policy, user_agent="test")
        try:
            return (await sender.post(url, b"{}", {}, 5.0)).status
        finally:
            await sender.close()

    try:
        with pytest.raises(TransportError) as info:
            asyncio.run(post(STRICT))
        assert info.value.kind == "blocked", str(info.value)
        assert listener.connections == 0
        allowed = DestinationPolicy(allowed_networks=parse_networks("127.0.0.1/32"))
        assert asyncio.run(post(allowed)) == 200
        assert listener.connections == 1
    finally:
        listener.close()
