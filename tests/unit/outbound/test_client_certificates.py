"""A subscription's own client certificate (mTLS), against a real TLS server on 127.0.0.1
that requires a certificate issued by its CA: presented when given, never on a connection
pooled for another certificate (or none); checked as a PEM pair; sealed at rest."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from tests.support.receiver import Receiver
from worker import eventloop
from worker.codec.avro import AvroCodec
from worker.codec.records import RecordCodec
from worker.config import parse_networks
from worker.outbound.client import HttpSender, TransportError
from worker.outbound.destinations import DestinationPolicy
from worker.outbound.tls import (
    ClientCertificate,
    InvalidCertificate,
    TlsContexts,
    check_client_certificate,
    fingerprint,
)
from worker.subscriptions.model import SecretEntry, Subscription
from worker.subscriptions.secrets import SecretBox, open_subscription, seal_subscription

LOCAL = DestinationPolicy(allowed_networks=parse_networks("127.0.0.1/32"))
SECRET = "whsec_" + "A" * 32
LOOP = "uvloop"


def certificate(ca: trustme.CA, name: str = "worker.example") -> ClientCertificate:
    issued = ca.issue_cert(name)
    chain = "".join(blob.bytes().decode() for blob in issued.cert_chain_pems)
    return ClientCertificate(chain, issued.private_key_pem.bytes().decode())


def mtls_server_context(ca: trustme.CA) -> ssl.SSLContext:
    """A server context for 127.0.0.1 that requires a client certificate ``ca`` issued."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    context.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(context)
    return context


def _send(url: str, tls: TlsContexts, certs: list[ClientCertificate | None]) -> list[str]:
    """One sender, the POSTs in turn (one connection at most): status or error of each."""

    async def main() -> list[str]:
        sender = HttpSender(max_connections=1, destinations=LOCAL, user_agent="ua/1", tls=tls)
        outcomes = []
        try:
            for cert in certs:
                try:
                    response = await sender.post(url, b"{}", {}, 5.0, certificate=cert)
                    outcomes.append(str(response.status))
                except TransportError as exc:
                    outcomes.append(f"{exc.kind}: {exc}")
        finally:
            await sender.close()
        return outcomes

    return eventloop.run(main(), LOOP)


def test_each_request_presents_its_own_certificate_on_connections_of_its_own(
    tmp_path: Path,
) -> None:
    ca, other_ca = trustme.CA(), trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))  # the receiver's server certificate is CA 1's
    tls = TlsContexts(ca_bundle=str(bundle))
    mine, renewed, foreign = certificate(ca), certificate(ca, "renewed"), certificate(other_ca)
    with Receiver(mtls_server_context(ca)) as receiver:
        url = receiver.endpoint("hook", SECRET)
        outcomes = _send(url, tls, [mine, None, mine, foreign, renewed, mine])
    assert outcomes[0] == "200"
    # No certificate: refused, so the connection the first request left idle was not used.
    # (TLS 1.3: the handshake completes on the client's side; the server's alert closes it.)
    assert outcomes[1].startswith("network: ")
    assert outcomes[2] == "200"
    assert outcomes[3].startswith("network: ")  # another CA's certificate: refused
    assert outcomes[4:] == ["200", "200"]


def test_contexts_are_made_once_per_certificate() -> None:
    ca = trustme.CA()
    tls = TlsContexts()
    a, b = certificate(ca), certificate(ca, "b")
    assert tls.get(a) is tls.get(ClientCertificate(a.cert, a.key))
    assert tls.get(b) is not tls.get(a)
    assert tls.get(None) is tls.default


def test_a_pair_is_checked_with_one_line_errors() -> None:
    ca = trustme.CA()
    good, other = certificate(ca), certificate(ca, "other")
    check_client_certificate(good.cert, good.key)
    assert fingerprint(good.cert).startswith("sha256:") and len(fingerprint(good.cert)) == 71
    cases = [
        (good.cert, other.key, "does not match"),
        ("not a certificate", good.key, "no PEM certificate"),
        (good.cert, "junk", "no PEM private key"),
        (good.cert, good.cert, "no PEM private key"),
    ]
    for cert, key, message in cases:
        with pytest.raises(InvalidCertificate, match=message) as caught:
            check_client_certificate(cert, key)
        assert "\n" not in str(caught.value)


def test_the_key_is_sealed_at_rest_and_round_trips() -> None:
    cert = certificate(trustme.CA())
    sub = Subscription(
        id="sub_1",
        workspace="acme",
        url="https://example.com/hook",
        events=("*",),
        secrets=(SecretEntry(SECRET),),
        client_cert=cert.cert,
        client_key=cert.key,
    )
    codec = RecordCodec(AvroCodec())
    assert codec.decode_subscription(codec.encode_subscription(sub)) == sub
    box = SecretBox(SecretBox.generate_key())
    sealed = seal_subscription(sub, box)
    written = codec.encode_subscription(sealed)
    body = cert.key.splitlines()[1].encode()
    assert body not in written and b"PRIVATE KEY" not in written
    assert cert.cert.splitlines()[1].encode() in written  # the certificate is no secret
    assert open_subscription(codec.decode_subscription(written), box) == sub
    assert sub.client_certificate() == cert
    assert "PRIVATE" not in repr(sub)
