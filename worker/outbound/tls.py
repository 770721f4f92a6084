"""The TLS contexts of outgoing requests: the system's trusted CAs plus ``WEBHOOK_CA_BUNDLE``
(added to them, not replacing them), and a client certificate presented to receivers that ask
for one (mTLS): ``WEBHOOK_CLIENT_CERT`` and ``WEBHOOK_CLIENT_KEY`` for every request, or a
subscription's own (:class:`ClientCertificate`, PEM in memory), which replaces the global one
for that subscription's requests. :class:`TlsContexts` keeps one context per distinct
certificate."""

from __future__ import annotations

import contextlib
import hashlib
import os
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from worker.config import ConfigError, Settings
from worker.errors import InvalidInput

__all__ = [
    "CERTIFICATE_CONTEXTS",
    "ClientCertificate",
    "InvalidCertificate",
    "TlsContexts",
    "certificate_context",
    "check_client_certificate",
    "client_ssl_context",
    "fingerprint",
]

CERTIFICATE_CONTEXTS = 1024  # contexts kept per process, one per distinct certificate


class InvalidCertificate(InvalidInput):
    """A client certificate and key that cannot be loaded together."""


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """A client certificate (PEM, the leaf first, then any intermediates) and its private key
    (PEM, unencrypted; plaintext in memory only)."""

    cert: str
    key: str = field(repr=False)


def fingerprint(cert_pem: str) -> str:
    """``sha256:<hex>`` of the first (leaf) certificate in ``cert_pem`` (as ``openssl x509
    -fingerprint -sha256`` shows it, without the colons)."""
    leaf = x509.load_pem_x509_certificates(cert_pem.encode())[0]
    return "sha256:" + hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()


def check_client_certificate(cert_pem: str, key_pem: str) -> None:
    """InvalidCertificate (one line) unless ``cert_pem`` holds PEM certificates (the leaf
    first) and ``key_pem`` the unencrypted PEM private key of the leaf."""
    try:
        x509.load_pem_x509_certificates(cert_pem.encode())
    except ValueError:
        raise InvalidCertificate("the client certificate is no PEM certificate") from None
    try:
        serialization.load_pem_private_key(key_pem.encode(), password=None)
    except TypeError:
        raise InvalidCertificate(
            "the client key is encrypted: give it unencrypted (it is sealed at rest)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidCertificate("the client key is no PEM private key") from None
    certificate_context(ClientCertificate(cert_pem, key_pem))  # the key matches the leaf


def client_ssl_context(settings: Settings) -> ssl.SSLContext:
    """The context for deliveries, challenges and test-fire; ConfigError (naming the
    variable) when a file cannot be read or is no PEM of the right kind."""
    context = _verifying_context(settings.ca_bundle)
    if settings.client_cert:
        try:
            context.load_cert_chain(settings.client_cert, settings.client_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"WEBHOOK_CLIENT_CERT: cannot load {settings.client_cert}"
                f"{' with ' + settings.client_key if settings.client_key else ''}: {exc}"
            ) from None
    return context


def certificate_context(
    certificate: ClientCertificate, ca_bundle: str | None = None
) -> ssl.SSLContext:
    """A context presenting ``certificate`` (and trusting the system's CAs and
    ``ca_bundle``); InvalidCertificate when the PEMs are no certificate and matching key."""
    context = _verifying_context(ca_bundle)
    with _pem_file(certificate.cert) as cert, _pem_file(certificate.key) as key:
        try:
            context.load_cert_chain(cert, key, password=_no_password)
        except ssl.SSLError as exc:
            reason = exc.reason or str(exc)
            if "KEY_VALUES_MISMATCH" in str(exc):
                raise InvalidCertificate("the client key does not match the certificate") from None
            raise InvalidCertificate(
                f"cannot load the client certificate and key: {reason}"
            ) from None
        except OSError as exc:
            raise InvalidCertificate(f"cannot load the client certificate and key: {exc}") from None
    return context


class TlsContexts:
    """The default context (``default``) and one per distinct client certificate, made on
    first use and kept (up to :data:`CERTIFICATE_CONTEXTS`, the oldest dropped first)."""

    def __init__(self, default: ssl.SSLContext | None = None, ca_bundle: str | None = None):
        self.default = default or _verifying_context(ca_bundle)
        self._ca_bundle = ca_bundle
        self._contexts: dict[ClientCertificate, ssl.SSLContext] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> TlsContexts:
        return cls(client_ssl_context(settings), settings.ca_bundle)

    def get(self, certificate: ClientCertificate | None) -> ssl.SSLContext:
        """The context presenting ``certificate`` (the default one for None);
        InvalidCertificate when it cannot be loaded."""
        if certificate is None:
            return self.default
        context = self._contexts.get(certificate)
        if context is None:
            context = certificate_context(certificate, self._ca_bundle)
            if len(self._contexts) >= CERTIFICATE_CONTEXTS:
                del self._contexts[next(iter(self._contexts))]
            self._contexts[certificate] = context
        return context


def _verifying_context(ca_bundle: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_bundle:
        try:
            context.load_verify_locations(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"WEBHOOK_CA_BUNDLE: cannot load {ca_bundle}: {exc}") from None
    return context


def _no_password() -> str:
    raise InvalidCertificate(
        "the client key is encrypted: give it unencrypted (it is sealed at rest)"
    )


@contextlib.contextmanager
def _pem_file(text: str) -> Iterator[str]:
    """``text`` as a path OpenSSL can read (``ssl`` loads certificates from files only): an
    anonymous memory file on Linux, so a private key never touches a disk; elsewhere a
    private temporary file, removed at once."""
    data = text.encode()
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("pem", 0)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    handle, path = tempfile.mkstemp(suffix=".pem")  # mode 0600
    try:
        try:
            os.write(handle, data)
        finally:
            os.close(handle)
        yield path
    finally:
        os.unlink(path)
