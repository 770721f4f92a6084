"""The TLS context of outgoing requests: the system's trusted CAs plus ``WEBHOOK_CA_BUNDLE``
(added to them, not replacing them), and the client certificate of ``WEBHOOK_CLIENT_CERT``
and ``WEBHOOK_CLIENT_KEY`` presented to receivers that ask for one (mTLS)."""

from __future__ import annotations

import ssl

from worker.config import ConfigError, Settings

__all__ = ["client_ssl_context"]


def client_ssl_context(settings: Settings) -> ssl.SSLContext:
    """The context for deliveries, challenges and test-fire; ConfigError (naming the
    variable) when a file cannot be read or is no PEM of the right kind."""
    context = ssl.create_default_context()
    if settings.ca_bundle:
        try:
            context.load_verify_locations(cafile=settings.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"WEBHOOK_CA_BUNDLE: cannot load {settings.ca_bundle}: {exc}"
            ) from None
    if settings.client_cert:
        try:
            context.load_cert_chain(settings.client_cert, settings.client_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"WEBHOOK_CLIENT_CERT: cannot load {settings.client_cert}"
                f"{' with ' + settings.client_key if settings.client_key else ''}: {exc}"
            ) from None
    return context
