"""The TLS context of deliveries: WEBHOOK_CA_BUNDLE added to the system's CAs, and the
client certificate (mTLS) a receiver can require, against a real TLS server on 127.0.0.1."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
import trustme

from tests.support.listener import TcpListener
from worker import eventloop
from worker.config import ConfigError, Settings, parse_networks
from worker.outbound.client import HttpSender, TransportError
from worker.outbound.destinations import DestinationPolicy
from worker.outbound.tls import client_ssl_context

LOCAL = DestinationPolicy(allowed_networks=parse_networks("127.0.0.1/32"))
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


def _mtls_server(ca: trustme.CA) -> TcpListener:
    """Answers 200 over TLS to clients presenting a certificate ``ca`` issued."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    context.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(context)

    def serve(raw: socket.socket) -> None:
        with raw:
            try:
                with context.wrap_socket(raw, server_side=True) as conn:
                    request = b""
                    while not request.endswith(b"\r\n\r\n{}"):  # the whole request
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        request += chunk
                    conn.sendall(OK)
            except (OSError, ssl.SSLError):  # refused the client's (missing) certificate
                pass

    return TcpListener(serve)


def _post(url: str, context: ssl.SSLContext) -> str:
    async def main() -> str:
        sender = HttpSender(
            max_connections=1, destinations=LOCAL, user_agent="ua/1", ssl_context=context
        )
        try:
            return str((await sender.post(url, b"{}", {}, 5.0)).status)
        except TransportError as exc:
            return f"{exc.kind}: {exc}"
        finally:
            await sender.close()

    return eventloop.run(main(), "uvloop")


def test_ca_bundle_and_client_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    client = ca.issue_cert("worker.example")
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    for blob in client.cert_chain_pems:
        blob.write_to_path(str(cert), append=True)
    client.private_key_pem.write_to_path(str(key))
    system = ssl.create_default_context().cert_store_stats()["x509_ca"]

    with_bundle = client_ssl_context(Settings(ca_bundle=str(bundle)))
    assert with_bundle.cert_store_stats()["x509_ca"] == system + 1  # added, not replaced
    mtls = client_ssl_context(
        Settings(ca_bundle=str(bundle), client_cert=str(cert), client_key=str(key))
    )
    server = _mtls_server(ca)
    try:
        url = f"https://127.0.0.1:{server.port}/hook"
        assert _post(url, mtls) == "200"
        assert _post(url, with_bundle).startswith("network: ")  # no certificate: refused
        assert "CERTIFICATE_VERIFY_FAILED" in _post(url, ssl.create_default_context())
    finally:
        server.close()


def test_unreadable_files_name_the_variable(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="WEBHOOK_CA_BUNDLE"):
        client_ssl_context(Settings(ca_bundle=missing))
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match="WEBHOOK_CLIENT_CERT"):
        client_ssl_context(Settings(client_cert=str(tmp_path / "junk.pem")))
