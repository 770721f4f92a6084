"""Deliveries through a forward proxy (Debian's tinyproxy on 127.0.0.1): every request goes
through it, to the address the worker checked; none goes out when it is down."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trustme

from tests.support.tinyproxy import TinyProxy, tinyproxy_binary
from worker import eventloop
from worker.config import parse_networks
from worker.outbound.client import HttpSender, TransportError
from worker.outbound.destinations import DestinationPolicy
from worker.subscriptions.challenge import ChallengeFailed, run_challenge
from worker.subscriptions.secrets import generate_secret

LOCAL = DestinationPolicy(allowed_networks=parse_networks("127.0.0.1/32"))

pytestmark = pytest.mark.skipif(
    tinyproxy_binary() is None,
    reason="tinyproxy is not installed (Debian: apt-get install tinyproxy; scripts/test does)",
)


class Receiver:
    """An HTTP(S) server on 127.0.0.1 keeping each request's Host header and counting the
    connections it accepts."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        owner = self
        self.hosts: list[str] = []
        self.connections = 0

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> Any:
                conn, address = super().get_request()
                owner.connections += 1
                if tls is not None:
                    conn = tls.wrap_socket(conn, server_side=True)
                return conn, address

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                owner.hosts.append(self.headers.get("host", ""))
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https_receiver(ca: trustme.CA) -> Iterator[Receiver]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    receiver = Receiver(context)
    yield receiver
    receiver.close()


@pytest.fixture
def http_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


def _send(url: str, proxy: str, context: ssl.SSLContext | None = None, n: int = 2) -> list[str]:
    async def main() -> list[str]:
        sender = HttpSender(
            max_connections=4,
            destinations=LOCAL,
            user_agent="ua/1",
            ssl_context=context,
            proxy=proxy,
        )
        outcomes = []
        try:
            for _ in range(n):
                try:
                    outcomes.append(str((await sender.post(url, b"{}", {}, 5.0)).status))
                except TransportError as exc:
                    outcomes.append(f"{exc.kind}: {exc}")
            return outcomes
        finally:
            await sender.close()

    return eventloop.run(main(), "uvloop")


def test_https_tunnels_to_the_checked_address_with_the_urls_name(
    ca: trustme.CA, https_receiver: Receiver
) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    port = https_receiver.port
    with TinyProxy() as proxy:
        # localhost is 127.0.0.1 and ::1 (/etc/hosts); only 127.0.0.1 is permitted.
        outcomes = _send(f"https://localhost:{port}/hook", proxy.url, context)
        requests = proxy.requests()
    assert outcomes == ["200", "200"]
    assert requests == [f"CONNECT 127.0.0.1:{port} HTTP/1.1"]  # one tunnel, kept alive
    # TLS verified the certificate for "localhost" inside the tunnel; Host is the name.
    assert https_receiver.hosts == [f"localhost:{port}"] * 2
    assert https_receiver.connections == 1


def test_http_goes_in_absolute_form_to_the_checked_address(http_receiver: Receiver) -> None:
    port = http_receiver.port
    with TinyProxy() as proxy:
        outcomes = _send(f"http://localhost:{port}/hook?a=1", proxy.url)
        requests = proxy.requests()
    assert outcomes == ["200", "200"]
    assert requests == [f"POST http://127.0.0.1:{port}/hook?a=1 HTTP/1.1"] * 2
    # tinyproxy (as RFC 9112 3.2.2 asks) sets Host from the absolute form: plain http through
    # a proxy shows the address; https keeps the name (the Host is inside the tunnel).
    assert http_receiver.hosts == [f"127.0.0.1:{port}"] * 2


def test_nothing_goes_out_when_the_proxy_is_down(
    ca: trustme.CA, https_receiver: Receiver, http_receiver: Receiver
) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with TinyProxy() as proxy:
        proxy.stop()
        down = [
            *_send(f"https://localhost:{https_receiver.port}/hook", proxy.url, context, 1),
            *_send(f"http://127.0.0.1:{http_receiver.port}/hook", proxy.url, None, 1),
        ]
    assert all(o.startswith("network: ConnectionRefusedError") for o in down), down
    assert https_receiver.connections == http_receiver.connections == 0


def test_a_refused_destination_never_reaches_the_proxy(http_receiver: Receiver) -> None:
    with TinyProxy() as proxy:
        outcomes = _send("http://10.1.2.3/hook", proxy.url, None, 1)
        requests = proxy.requests()
    assert outcomes[0].startswith("blocked: destination 10.1.2.3")
    assert requests == []


def test_a_proxy_refusing_the_tunnel_fails_the_attempt() -> None:
    with TinyProxy() as proxy:  # nothing listens on port 9 of 127.0.0.1
        outcomes = _send("https://127.0.0.1:9/hook", proxy.url, None, 1)
    assert outcomes[0].startswith("network: ProxyError: the proxy refused CONNECT 127.0.0.1:9")


def test_the_challenge_goes_through_the_proxy_too(ca: trustme.CA, https_receiver: Receiver) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    port = https_receiver.port
    url = f"https://localhost:{port}/hook"
    with TinyProxy() as proxy:
        run_challenge(
            url, [generate_secret()], destinations=LOCAL, ssl_context=context, proxy=proxy.url
        )
        requests = proxy.requests()
        proxy.stop()
        with pytest.raises(ChallengeFailed, match="connection refused or unreachable"):
            run_challenge(
                url, [generate_secret()], destinations=LOCAL, ssl_context=context, proxy=proxy.url
            )
    assert requests == [f"CONNECT 127.0.0.1:{port} HTTP/1.1"]
    assert https_receiver.hosts == [f"localhost:{port}"]
