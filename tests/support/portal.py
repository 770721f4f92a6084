"""Portal helpers for tests: module-wide settings on the session's broker, a portal link
made through the real API, and opening it with plain HTTP."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.support.topics import create_topics
from worker.catalogue import example_catalogue_path
from worker.config import Settings, parse_retry_delays


def portal_settings(bootstrap: str, directory: Path, **overrides: Any) -> Settings:
    """Settings with their own topics (created), the example catalogue and a shared portal
    key, for a whole test module."""
    prefix = f"p{uuid.uuid4().hex[:8]}."
    values: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "topic_prefix": prefix,
        "input_topics": f"{prefix}events",
        "group_id": f"{prefix}group",
        "metrics_port": 0,
        "allow_http": True,
        "allow_private_networks": True,
        "retry_delays_ms": parse_retry_delays("200ms,400ms"),
        "shutdown_timeout_ms": 10_000,
        "challenge_cache": str(directory / "challenges.json"),
        "event_types": str(example_catalogue_path()),
        "portal_key": "k" * 40,
        "api_port": 0,
        "api_data_dir": str(directory / "api"),
        "api_rate_limit": 0,
    }
    values.update(overrides)
    settings = Settings.from_env({}, **values)
    create_topics(settings, 2)
    return settings


def new_link(api: httpx.Client, workspace: str, ttl: str | None = None) -> str:
    """A portal URL for ``workspace`` from ``POST .../portal-links``."""
    body = {"ttl": ttl} if ttl else None
    response = api.post(f"/v1/workspaces/{workspace}/portal-links", json=body)
    assert response.status_code == 200, response.text
    url: str = response.json()["url"]
    return url


def link_of(url: str) -> str:
    return url.split("#", 1)[1]


def open_session(base: str, url: str) -> tuple[httpx.Client, str]:
    """Spend the link of ``url``: a client holding the session cookie, and the CSRF token."""
    portal = httpx.Client(base_url=base, timeout=30)
    response = portal.post("/portal/session", json={"link": link_of(url)})
    assert response.status_code == 200, response.text
    csrf: str = response.json()["csrf_token"]
    return portal, csrf
