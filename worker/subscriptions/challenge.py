"""URL validation by challenge (as Harvestr does): before a subscription is created, or its
URL changed, the endpoint must answer 2xx within 5 s to a signed ``{"challenge": "<uuid>"}``.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from worker import __version__
from worker.errors import DeliveryFailed
from worker.outbound.client import TransportError, post_once
from worker.outbound.destinations import (
    BlockedDestination,
    DestinationPolicy,
    resolve_destination,
)
from worker.outbound.signing import decode_secret, load_signing_key, sign_headers
from worker.outbound.tls import ClientCertificate, TlsContexts

__all__ = [
    "ChallengeCache",
    "ChallengeFailed",
    "RecentChallenges",
    "check_destination",
    "run_challenge",
]

CHALLENGE_TIMEOUT_S = 5.0
CACHE_TTL_S = 3600.0


class ChallengeCache:
    """(workspace, URL) pairs that passed a challenge recently (1 hour), in a small JSON file
    of the CLI user's. Never shared across workspaces: a workspace cannot skip a challenge
    because another one's endpoint passed it.

    A convenience, not a security boundary: it only spares an endpoint a second challenge
    when several subscriptions of one workspace point at it.
    """

    def __init__(self, path: str) -> None:
        self._path = Path(path).expanduser()

    def _load(self) -> dict[str, float]:
        try:
            data = orjson.loads(self._path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        return {k: float(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def recent(self, workspace: str, url: str, now: float | None = None) -> bool:
        passed = self._load().get(f"{workspace} {url}")
        return passed is not None and (now or time.time()) - passed < CACHE_TTL_S

    def remember(self, workspace: str, url: str, now: float | None = None) -> None:
        now = now or time.time()
        data = {k: v for k, v in self._load().items() if now - v < CACHE_TTL_S}
        data[f"{workspace} {url}"] = now
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._path.write_bytes(orjson.dumps(data))
        except OSError:
            pass  # a read-only home only costs a repeated challenge


class RecentChallenges:
    """The API's memory of passed challenges, per (workspace, URL), for an hour, in the
    process (each replica challenges once on its own)."""

    def __init__(self) -> None:
        self._passed: dict[tuple[str, str], float] = {}

    def recent(self, workspace: str, url: str) -> bool:
        passed = self._passed.get((workspace, url))
        return passed is not None and time.monotonic() - passed < CACHE_TTL_S

    def remember(self, workspace: str, url: str) -> None:
        now = time.monotonic()
        if len(self._passed) > 10_000:
            self._passed = {k: v for k, v in self._passed.items() if now - v < CACHE_TTL_S}
        self._passed[(workspace, url)] = now


class ChallengeFailed(DeliveryFailed):
    """The endpoint did not pass; the message says what happened."""


def run_challenge(
    url: str,
    secrets: list[str],
    *,
    destinations: DestinationPolicy,
    ssl_context: ssl.SSLContext | None = None,
    proxy: str | None = None,
    signing_keys: Sequence[str] = (),
    tls: TlsContexts | None = None,
    certificate: ClientCertificate | None = None,
) -> str:
    """POST the challenge; return the challenge value on success, raise ChallengeFailed.

    The POST goes out on the delivery client (:func:`worker.outbound.client.post_once`): to
    an address the destination policy permits, checked as it connects (Host header and TLS
    name stay the URL's), through ``proxy`` when one is set, presenting ``certificate``
    (a subscription's own client certificate) when given.
    """
    check_destination(url, destinations)  # the clearest message when the URL is refused
    challenge = str(uuid.uuid4())
    body = orjson.dumps({"challenge": challenge})
    headers = {
        "content-type": "application/json",
        **sign_headers(
            f"msg_challenge_{challenge.replace('-', '')}",
            int(time.time()),
            body,
            [decode_secret(s) for s in secrets],
            [load_signing_key(k) for k in signing_keys],
        ),
    }
    try:
        response = post_once(
            url,
            body,
            headers,
            CHALLENGE_TIMEOUT_S,
            destinations=destinations,
            user_agent=f"webhook-worker/{__version__}",
            ssl_context=ssl_context,
            proxy=proxy,
            tls=tls,
            certificate=certificate,
        )
    except TransportError as exc:
        message, public = _failure(url, exc)
        raise ChallengeFailed(message, public=public) from None
    if not 200 <= response.status < 300:
        raise ChallengeFailed(
            f"challenge to {url} failed: endpoint answered HTTP {response.status}",
            public=f"The endpoint answered our verification request with HTTP "
            f"{response.status}; it must answer with a 2xx status.",
        )
    return challenge


_UNREACHABLE = (
    "We could not connect to this URL to verify it. Check that the endpoint is running "
    "and reachable from the internet."
)


def _failure(url: str, exc: TransportError) -> tuple[str, str]:
    """The message (for operators and API clients) and its words for an end user."""
    text = str(exc)
    if exc.kind == "timeout":
        return (
            f"challenge to {url} timed out after {CHALLENGE_TIMEOUT_S:g}s",
            f"The endpoint did not answer our verification request within "
            f"{CHALLENGE_TIMEOUT_S:g} seconds.",
        )
    if exc.kind == "blocked":
        return f"challenge to {url} refused: {text}", _BLOCKED
    if "CERTIFICATE" in text.upper() or "SSL" in text.upper():
        return (
            f"challenge to {url} failed: TLS error: {text}",
            "The endpoint's HTTPS certificate could not be verified.",
        )
    if exc.kind == "invalid":
        return f"challenge to {url} failed: {text}", "This URL cannot be used as written."
    return f"challenge to {url} failed: connection refused or unreachable: {text}", _UNREACHABLE


_BLOCKED = "This URL points to a private or reserved network address; use a public endpoint."


def check_destination(url: str, destinations: DestinationPolicy) -> list[str]:
    """Refuse a URL whose host is, or resolves only to, addresses ``destinations`` does not
    permit, or does not resolve at all (ChallengeFailed). The same rules as every delivery
    attempt, which checks again at connect time: this check alone proves nothing later.
    Returns the permitted addresses, to connect to one of them."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        return asyncio.run(resolve_destination(host, port, destinations))
    except BlockedDestination as exc:
        raise ChallengeFailed(f"challenge to {url} refused: {exc}", public=_BLOCKED) from None
    except OSError as exc:
        raise ChallengeFailed(
            f"challenge to {url} failed: {exc}",
            public="This URL's host name could not be found. Check it for typos.",
        ) from None
