"""URL validation by challenge (as Harvestr does): before a subscription is created, or its
URL changed, the endpoint must answer 2xx within 5 s to a signed ``{"challenge": "<uuid>"}``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson

from worker import __version__
from worker.outbound.destinations import (
    BlockedDestination,
    DestinationPolicy,
    resolve_destination,
)
from worker.outbound.signing import decode_secret, load_signing_key, sign_headers

__all__ = [
    "ChallengeCache",
    "ChallengeFailed",
    "RecentChallenges",
    "check_destination",
    "pinned_target",
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


class ChallengeFailed(Exception):
    """The endpoint did not pass; the message says what happened."""


def run_challenge(
    url: str,
    secrets: list[str],
    *,
    destinations: DestinationPolicy,
    signing_keys: Sequence[str] = (),
) -> str:
    """POST the challenge; return the challenge value on success, raise ChallengeFailed.

    The POST goes to the address the destination check approved (Host header and TLS name
    stay the URL's), so a DNS answer that changes after the check is never connected to.
    """
    target, pinned, extensions = pinned_target(url, destinations)
    challenge = str(uuid.uuid4())
    body = orjson.dumps({"challenge": challenge})
    headers = {
        "content-type": "application/json",
        "user-agent": f"webhook-worker/{__version__}",
        **sign_headers(
            f"msg_challenge_{challenge.replace('-', '')}",
            int(time.time()),
            body,
            [decode_secret(s) for s in secrets],
            [load_signing_key(k) for k in signing_keys],
        ),
    }
    try:
        with httpx.Client(timeout=CHALLENGE_TIMEOUT_S, follow_redirects=False) as client:
            response = client.post(
                target, content=body, headers={**headers, **pinned}, extensions=extensions
            )
    except httpx.TimeoutException:
        raise ChallengeFailed(f"challenge to {url} timed out after 5s") from None
    except httpx.ConnectError as exc:
        text = str(exc)
        if "CERTIFICATE" in text.upper() or "SSL" in text.upper():
            raise ChallengeFailed(f"challenge to {url} failed: TLS error: {text}") from None
        raise ChallengeFailed(
            f"challenge to {url} failed: connection refused or unreachable: {text}"
        ) from None
    except httpx.HTTPError as exc:
        raise ChallengeFailed(f"challenge to {url} failed: {type(exc).__name__}: {exc}") from None
    if not 200 <= response.status_code < 300:
        raise ChallengeFailed(
            f"challenge to {url} failed: endpoint answered HTTP {response.status_code}"
        )
    return challenge


def pinned_target(
    url: str, destinations: DestinationPolicy
) -> tuple[str | httpx.URL, dict[str, str], dict[str, str]]:
    """Where an httpx request to ``url`` must go: the address the destination check approved
    (ChallengeFailed if none), with the URL's Host header and TLS name kept, so a DNS answer
    that changes after the check is never connected to. ``(target, headers, extensions)``."""
    if destinations.allow_private:
        return url, {}, {}
    address = check_destination(url, destinations)[0]
    parsed = httpx.URL(url)
    extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
    return (
        parsed.copy_with(host=address),
        {"host": parsed.netloc.decode("ascii")},
        extensions,
    )


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
        raise ChallengeFailed(f"challenge to {url} refused: {exc}") from None
    except OSError as exc:
        raise ChallengeFailed(f"challenge to {url} failed: {exc}") from None
