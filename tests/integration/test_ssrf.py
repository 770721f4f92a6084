"""SSRF end to end: a real worker with private networks forbidden delivers nothing to a real
receiver on 127.0.0.1, whatever the URL's spelling, and a name whose DNS answer changes
after the creation-time check (rebinding) is refused at delivery. Every case is run a second
time with WEBHOOK_ALLOWED_NETWORKS admitting loopback, where the same URLs are delivered: so
the receivers and URLs work, and only the guard stands between them and the worker.

Subscriptions are written with creation-time checks relaxed (as if the URL were valid when
created and changed since), so only the worker's connect-time guard is under test. Every name
is resolved from /etc/hosts or by a DNS server on 127.0.0.1 run here: no traffic leaves it.
(Redirects not being followed is covered by test_receiver_faults.py.)
"""

from __future__ import annotations

import socket
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

from tests.support.kafka import consume_all, produce_json
from tests.support.receiver import Receiver
from tests.support.subs import SubsWriter
from tests.support.worker import running
from worker.codec.avro import AvroCodec
from worker.codec.records import RecordCodec
from worker.config import Settings, parse_networks
from worker.model import Attempt, DeadLetter
from worker.outbound.destinations import DestinationPolicy
from worker.subscriptions.challenge import ChallengeFailed, check_destination, run_challenge
from worker.subscriptions.secrets import generate_secret

CODEC = RecordCodec(AvroCodec())
BLOCKED = "destination_blocked"  # the dead-letter reason (worker/dispatch/policy.py)
LOOPBACK = "127.0.0.1/32,::1/128,0.0.0.0/32"

# Host spellings that all reach the receiver on 127.0.0.1 (or the one on ::1).
SPELLINGS = {
    "dotted": "127.0.0.1",
    "name": "localhost",
    "decimal": "2130706433",
    "hex": "0x7f000001",
    "hexshort": "0x7f.1",
    "octal": "0177.0.0.1",
    "short": "127.1",
    "zero": "0.0.0.0",
    "mapped": "[::ffff:127.0.0.1]",
}


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


HAS_IPV6 = _ipv6_loopback()


class CountingReceiver:
    """An HTTP server answering 200, counting the TCP connections it accepts and keeping
    each request's Host header."""

    def __init__(self, address: str = "::1") -> None:
        owner = self

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
            daemon_threads = True

            def verify_request(self, request: Any, client_address: Any) -> bool:
                owner.connections += 1
                return True

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                owner.hosts.append(self.headers.get("host", ""))
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.connections = 0
        self.hosts: list[str] = []
        self.server = Server((address, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def requests(self) -> int:
        return len(self.hosts)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class RebindingDns:
    """A DNS server on 127.0.0.1: the first A query for ``first_public`` names gets a
    public address, every later one 127.0.0.1; anything else is NXDOMAIN."""

    first_public: set[str]
    queries: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def __post_init__(self) -> None:
        dns = self

        class Resolver(BaseResolver):
            def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
                return dns.answer(request)

        quiet = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
        self.server = DNSServer(Resolver(), port=0, address="127.0.0.1", logger=quiet)
        self.server.start_thread()
        self.address = f"127.0.0.1:{self.server.server.server_address[1]}"

    def answer(self, request: DNSRecord) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".")
        if name not in self.first_public:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        if request.q.qtype == QTYPE.A:
            self.queries[name] += 1
            # 93.184.215.14 is public; it is only ever checked, never connected to.
            address = "93.184.215.14" if self.queries[name] == 1 else "127.0.0.1"
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=0))
        return reply

    def close(self) -> None:
        self.server.stop()
        self.server.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture
def v6_receiver() -> Iterator[CountingReceiver | None]:
    if not HAS_IPV6:
        yield None
        return
    server = CountingReceiver()
    yield server
    server.close()


@pytest.mark.parametrize("allowed", ["", LOOPBACK], ids=["forbidden", "allow-listed"])
def test_loopback_in_any_spelling_is_refused_at_delivery(
    settings_factory: Any, receiver: Receiver, v6_receiver: CountingReceiver | None, allowed: str
) -> None:
    base = settings_factory(retry_delays="200ms")
    writer = SubsWriter(base)  # private networks allowed: as if valid when created
    urls = {}
    for name, host in SPELLINGS.items():
        receiver.endpoint(name, secret := generate_secret())
        url = f"http://{host}:{receiver.port}/{name}"
        urls[name] = writer.create(name, url, ["*"], secret=secret, timeout_ms=2000).url
    if v6_receiver is not None:
        urls["v6"] = writer.create(
            "v6", f"http://[::1]:{v6_receiver.port}/v6", ["*"], timeout_ms=2000
        ).url
    settings = base.with_overrides(
        allow_private_networks=False, allowed_networks=parse_networks(allowed)
    )
    assert not settings.allow_private_networks
    letters, attempts = deliver_one_event_each(settings, set(urls), expect_letters=not allowed)

    delivered = {name: len(receiver.received(name)) for name in SPELLINGS}
    if v6_receiver is not None:
        delivered["v6"] = v6_receiver.requests
    if allowed:  # the same URLs reach the receivers once loopback is allow-listed
        assert delivered == dict.fromkeys(urls, 1)
        assert all(r.verified for name in SPELLINGS for r in receiver.received(name))
        assert letters == {}
        assert {name: [a.outcome for a in attempts[name]] for name in urls} == {
            name: ["success"] for name in urls
        }
        return
    assert delivered == dict.fromkeys(urls, 0)
    if v6_receiver is not None:
        assert v6_receiver.connections == 0
    assert {name: (d.reason, d.attempts) for name, d in letters.items()} == dict.fromkeys(
        urls, (BLOCKED, 1)
    )
    for name in urls:
        [attempt] = attempts[name]
        assert attempt.outcome == "dead_letter" and attempt.status is None, name
        assert "not publicly routable" in (attempt.error or ""), (name, attempt.error)


@pytest.mark.parametrize("allowed", ["", LOOPBACK], ids=["forbidden", "allow-listed"])
def test_dns_rebinding_after_creation_and_failed_lookups(
    settings_factory: Any, receiver: Receiver, allowed: str
) -> None:
    dns = RebindingDns({"rebind.test"})
    try:
        base = settings_factory(retry_delays="200ms")
        settings = base.with_overrides(
            allow_private_networks=False,
            allowed_networks=parse_networks(allowed),
            dns_servers=(dns.address,),
        )
        rebind_url = receiver.endpoint("rebind", secret := generate_secret())
        rebind_url = rebind_url.replace("127.0.0.1", "rebind.test")
        # The creation-time check asks the same DNS server and sees a public address.
        check_destination(rebind_url, DestinationPolicy.from_settings(settings))
        assert dns.queries["rebind.test"] == 1
        with pytest.raises(ChallengeFailed, match="DNS lookup failed"):
            check_destination(
                "http://nonexistent.invalid/", DestinationPolicy.from_settings(settings)
            )

        writer = SubsWriter(base)
        writer.create("rebind", rebind_url, ["*"], secret=secret, timeout_ms=2000)
        receiver.endpoint("nxdomain", secret := generate_secret())
        nx_url = f"http://nonexistent.invalid:{receiver.port}/nxdomain"
        writer.create("nxdomain", nx_url, ["*"], secret=secret, timeout_ms=2000)

        letters, attempts = deliver_one_event_each(
            settings,
            {"rebind", "nxdomain"},
            expect_letters=True,
            letters_for={"nxdomain"} if allowed else {"rebind", "nxdomain"},
        )
        assert dns.queries["rebind.test"] >= 2  # the worker asked again at delivery
    finally:
        dns.close()

    # A lookup that fails is a network error: retried, then dead-lettered; nothing sent.
    assert (letters["nxdomain"].reason, letters["nxdomain"].attempts) == ("retries_exhausted", 2)
    assert "DNS lookup failed for nonexistent.invalid" in (letters["nxdomain"].last_error or "")
    assert [a.outcome for a in attempts["nxdomain"]] == ["retry", "dead_letter"]
    assert receiver.received("nxdomain") == []
    if allowed:
        assert len(receiver.received("rebind")) == 1 and receiver.received("rebind")[0].verified
        assert "rebind" not in letters
        return
    assert receiver.received("rebind") == []
    assert (letters["rebind"].reason, letters["rebind"].attempts) == (BLOCKED, 1)
    assert "destination 127.0.0.1" in (letters["rebind"].last_error or "")


def deliver_one_event_each(
    settings: Settings,
    workspaces: set[str],
    *,
    expect_letters: bool,
    letters_for: set[str] | None = None,
    timeout: float = 20,
) -> tuple[dict[str, DeadLetter], dict[str, list[Attempt]]]:
    """Run the worker until every workspace's one event has its final attempt; return the
    dead letters and attempts by workspace. The worker must still be ready afterwards."""
    events = [{"event": "x.created", "workspace": ws, "id": f"ev-{ws}"} for ws in workspaces]
    with running(settings) as worker:
        assert settings.bootstrap_servers
        produce_json(settings.bootstrap_servers, settings.input_topics, events)
        deadline = time.monotonic() + timeout
        while True:
            attempts = read_attempts(settings)
            final = {ws for ws, got in attempts.items() if got[-1].outcome != "retry"}
            if workspaces <= final:
                break
            assert time.monotonic() < deadline, f"no final attempt for {workspaces - final}"
            time.sleep(0.3)
        ready = httpx.get(f"http://127.0.0.1:{worker.port}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text  # no crash, still serving
    letters = {
        d.task.workspace: d
        for d in (
            CODEC.decode_dead_letter(m.value)
            for m in consume_all(settings.bootstrap_servers, settings.topic_prefix + "dlq")
        )
    }
    expected = (letters_for or workspaces) if expect_letters else set()
    assert expected <= set(letters), sorted(expected - set(letters))
    return letters, attempts


def read_attempts(settings: Settings) -> dict[str, list[Attempt]]:
    assert settings.bootstrap_servers
    out: dict[str, list[Attempt]] = defaultdict(list)
    for m in consume_all(settings.bootstrap_servers, settings.topic_prefix + "attempts"):
        attempt = CODEC.decode_attempt(m.value)
        out[attempt.workspace].append(attempt)
    for got in out.values():
        got.sort(key=lambda a: a.attempt)
    return out


def test_challenge_goes_to_the_checked_address_with_the_urls_host() -> None:
    """The challenge connects to the address its check approved (here localhost, from
    /etc/hosts) and still sends the URL's Host; refused with no connection otherwise."""
    pinned = CountingReceiver("127.0.0.1")
    try:
        url = f"http://localhost:{pinned.port}/challenge"
        with pytest.raises(ChallengeFailed, match="not publicly routable"):
            run_challenge(url, [generate_secret()], destinations=DestinationPolicy())
        assert pinned.connections == 0
        allowed = DestinationPolicy(allowed_networks=parse_networks("127.0.0.1/32"))
        run_challenge(url, [generate_secret()], destinations=allowed)
        assert pinned.hosts == [f"localhost:{pinned.port}"]
    finally:
        pinned.close()
