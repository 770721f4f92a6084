"""The delivery client's own resolver against a DNS server on 127.0.0.1 (dnslib) that never
answers some names: one workspace's dead name servers cannot stall another's deliveries."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

from worker import eventloop
from worker.config import parse_networks
from worker.outbound.client import HttpSender, TransportError
from worker.outbound.destinations import DestinationPolicy
from worker.outbound.resolver import Resolver


class Dns:
    """Names starting ``dead`` are never answered; ``ok*`` are 127.0.0.1 (A only);
    ``public*`` a public address; anything else NXDOMAIN. Counts queries per name."""

    def __init__(self) -> None:
        self.queries: dict[str, int] = defaultdict(int)
        self.release = threading.Event()
        dns = self

        class Resolver(BaseResolver):
            def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
                name = str(request.q.qname).rstrip(".")
                dns.queries[name] += 1
                reply = request.reply()
                if name.startswith("dead"):
                    dns.release.wait(30)  # a name server that never answers
                elif name.startswith(("ok", "private")):
                    if request.q.qtype == QTYPE.A:
                        address = "127.0.0.1" if name.startswith("ok") else "10.1.2.3"
                        reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=60))
                else:
                    reply.header.rcode = RCODE.NXDOMAIN
                return reply

        quiet = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
        self.server = DNSServer(Resolver(), port=0, address="127.0.0.1", logger=quiet)
        self.server.start_thread()
        self.address = f"127.0.0.1:{self.server.server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.server.stop()
        self.server.server.server_close()


class Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def dns() -> Iterator[Dns]:
    server = Dns()
    yield server
    server.close()


@pytest.fixture
def http_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _policy(dns: Dns) -> DestinationPolicy:
    return DestinationPolicy(
        allowed_networks=parse_networks("127.0.0.1/32"), dns_servers=(dns.address,)
    )


def test_hanging_lookups_of_one_workspace_do_not_delay_anothers(dns: Dns, http_port: int) -> None:
    async def main() -> tuple[list[str], list[float]]:
        sender = HttpSender(max_connections=200, destinations=_policy(dns), user_agent="ua/1")

        async def post(host: str, tenant: str, timeout_s: float) -> str:
            url = f"http://{host}:{http_port}/hook"
            try:
                return str((await sender.post(url, b"{}", {}, timeout_s, tenant)).status)
            except TransportError as exc:
                return exc.kind

        try:
            # 50 deliveries of workspace "a" to names whose servers never answer...
            stuck = [
                asyncio.ensure_future(post(f"dead-{i % 25}.test", "a", 3.0)) for i in range(50)
            ]
            await asyncio.sleep(0.2)
            # ...while workspace "b" delivers to 20 names of its own, each looked up afresh.
            latencies = []
            for i in range(20):
                start = time.perf_counter()
                assert await post(f"ok-{i}.test", "b", 2.0) == "200"
                latencies.append(time.perf_counter() - start)
            return await asyncio.gather(*stuck), latencies
        finally:
            await sender.close()

    stuck, latencies = eventloop.run(main(), "uvloop")
    assert set(stuck) <= {"timeout", "network"}  # our deadline, or c-ares' own
    dead = {name: n for name, n in dns.queries.items() if name.startswith("dead")}
    # Deliveries to one name share its lookup (A and AAAA, two tries each, at most) ...
    assert max(dead.values()) <= 4
    # ... and workspace "a" never has more than 8 in flight: the last names still waited.
    assert len(dead) < 25
    assert max(latencies) < 1.0  # not queued behind the hanging ones (they wait 3 s)


def test_failures_are_cached_briefly_and_blocked_answers_refused(dns: Dns) -> None:
    async def main() -> list[str]:
        resolver = Resolver(_policy(dns), timeout_s=0.5, negative_ttl_s=0.5)
        outcomes = []
        try:
            start = time.perf_counter()
            for host in ("ok.test", "nx.test", "nx.test", "dead.test", "dead.test", "private.test"):
                try:
                    outcomes.append(",".join(await resolver.resolve(host, "t")))
                except OSError as exc:
                    outcomes.append(f"{type(exc).__name__}: {exc}")
            # Two lookups answered at once, two failed after 0.5 s, the second from the cache.
            outcomes.append(str(time.perf_counter() - start < 0.9))
            await asyncio.sleep(0.6)  # the failure is asked again once its 0.5 s are over
            with contextlib.suppress(OSError):
                await resolver.resolve("nx.test", "t")
            return outcomes
        finally:
            await resolver.close()

    outcomes = eventloop.run(main(), "uvloop")
    assert outcomes[0] == "127.0.0.1"
    assert outcomes[1] == outcomes[2] and outcomes[1].startswith("OSError: DNS lookup failed")
    assert outcomes[3] == outcomes[4] == "OSError: DNS lookup for dead.test timed out"
    assert outcomes[5].startswith("BlockedDestination: destination 10.1.2.3")
    assert outcomes[6] == "True"  # the second lookup of dead.test did not wait again
    nx_first = 2  # A and AAAA
    assert dns.queries["nx.test"] > nx_first  # asked again after the negative TTL
