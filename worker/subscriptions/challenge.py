"""URL validation by challenge (as Harvestr does): before a subscription is created, or its
URL changed, the endpoint must answer 2xx within 5 s to a signed ``{"challenge": "<uuid>"}``.
"""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson

from worker import __version__
from worker.dispatch.destinations import is_public_address
from worker.dispatch.signing import decode_secret, sign_headers

__all__ = ["ChallengeCache", "ChallengeFailed", "check_destination", "run_challenge"]

CHALLENGE_TIMEOUT_S = 5.0
CACHE_TTL_S = 3600.0


class ChallengeCache:
    """URLs that passed a challenge recently (1 hour), in a small JSON file of the CLI user's.

    A convenience, not a security boundary: it only spares an endpoint a second challenge
    when several subscriptions point at it.
    """

    def __init__(self, path: str) -> None:
        self._path = Path(path).expanduser()

    def _load(self) -> dict[str, float]:
        try:
            data = orjson.loads(self._path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        return {k: float(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def recent(self, url: str, now: float | None = None) -> bool:
        passed = self._load().get(url)
        return passed is not None and (now or time.time()) - passed < CACHE_TTL_S

    def remember(self, url: str, now: float | None = None) -> None:
        now = now or time.time()
        data = {k: v for k, v in self._load().items() if now - v < CACHE_TTL_S}
        data[url] = now
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._path.write_bytes(orjson.dumps(data))
        except OSError:
            pass  # a read-only home only costs a repeated challenge


class ChallengeFailed(Exception):
    """The endpoint did not pass; the message says what happened."""


def run_challenge(url: str, secrets: list[str], *, allow_private: bool) -> str:
    """POST the challenge; return the challenge value on success, raise ChallengeFailed."""
    if not allow_private:
        check_destination(url)
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
        ),
    }
    try:
        with httpx.Client(timeout=CHALLENGE_TIMEOUT_S, follow_redirects=False) as client:
            response = client.post(url, content=body, headers=headers)
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


def check_destination(url: str) -> None:
    """Refuse a URL whose host resolves to no public address (ChallengeFailed)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ChallengeFailed(f"challenge to {url} failed: DNS lookup failed: {exc}") from None
    if not any(is_public_address(str(info[4][0])) for info in infos):
        raise ChallengeFailed(f"challenge to {url} refused: {host} is not publicly routable")
