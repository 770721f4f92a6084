"""Portal links, session cookies and CSRF tokens: what verifies, what is refused."""

from __future__ import annotations

import time

import pytest

from worker.config import ConfigError, Settings
from worker.portal.csrf import csrf_matches, csrf_token
from worker.portal.keys import PortalKeys
from worker.portal.links import MAX_TTL_MS, create_portal_link, new_link, read_link
from worker.portal.sessions import COOKIE, MAX_AGE_MS, CookiePolicy, open_session, read_session

KEYS = PortalKeys.from_master(b"test master key")


def test_a_link_reads_back_until_it_expires() -> None:
    link, text = new_link(KEYS, "acme", "tok1", 60_000)
    assert read_link(KEYS, text) == link
    assert read_link(KEYS, text, now_ms=link.expires_ms) is None
    assert read_link(PortalKeys.from_master(b"other"), text) is None
    payload, mac = text.split(".")
    flipped = mac[:10] + ("A" if mac[10] != "A" else "B") + mac[11:]
    assert read_link(KEYS, f"{payload}.{flipped}") is None
    assert read_link(KEYS, f"{payload[:-2]}xx.{mac}") is None
    for junk in ("", ".", "a.b", "%%%.%%%", "x" * 5000):
        assert read_link(KEYS, junk) is None


def test_a_link_lives_at_most_an_hour_and_nonces_differ() -> None:
    link, _ = new_link(KEYS, "acme", "tok1", 10 * MAX_TTL_MS)
    assert link.expires_ms <= time.time() * 1000 + MAX_TTL_MS + 1000
    assert new_link(KEYS, "acme", "tok1")[0].nonce != new_link(KEYS, "acme", "tok1")[0].nonce


def test_keys_are_split_by_use_and_shared_by_settings() -> None:
    assert len({KEYS.link, KEYS.session, KEYS.csrf}) == 3
    a = PortalKeys.from_settings(Settings(portal_key="p" * 32))
    b = PortalKeys.from_settings(Settings(portal_key="p" * 32))
    assert a == b and a.shared
    derived = PortalKeys.from_settings(Settings(secrets_key="s" * 44))
    assert derived.shared and derived.link != a.link
    local = PortalKeys.from_settings(Settings())
    assert not local.shared and local == PortalKeys.from_settings(Settings())  # one per process
    url, _ = create_portal_link(Settings(portal_key="p" * 32), "acme", "tok", "https://h.example")
    assert read_link(a, url.split("#", 1)[1]) is not None


def test_a_session_cookie_slides_and_ends_when_idle() -> None:
    policy = CookiePolicy(secure=False, embedded=False, idle_ms=60_000)
    session = open_session("acme", "tok1")
    cookie = policy.set_cookie(KEYS, session).split(";")[0]
    assert cookie.startswith(f"{COOKIE}=")
    read = read_session(KEYS, f"other=1; {cookie}", 60_000)
    assert read is not None and read.workspace == "acme" and read.id == session.id
    # set_cookie stamps the time it runs (a millisecond or more after open_session): margin.
    assert read_session(KEYS, cookie, 60_000, now_ms=session.seen_ms + 61_000) is None
    later = policy.set_cookie(KEYS, session, now_ms=session.seen_ms + 50_000).split(";")[0]
    assert read_session(KEYS, later, 60_000, now_ms=session.seen_ms + 100_000) is not None
    assert read_session(KEYS, later, 60_000, now_ms=session.issued_ms + MAX_AGE_MS + 1) is None
    assert read_session(PortalKeys.from_master(b"x"), cookie, 60_000) is None
    assert read_session(KEYS, None, 60_000) is None
    assert read_session(KEYS, f"{COOKIE}=garbage", 60_000) is None


def test_cookie_attributes_follow_https_and_framing() -> None:
    session = open_session("acme", "tok1")
    plain = CookiePolicy.from_settings(Settings()).set_cookie(KEYS, session)
    assert "HttpOnly" in plain and "SameSite=Lax" in plain and "Secure" not in plain
    https = CookiePolicy.from_settings(Settings(public_url="https://hooks.example.com"))
    assert "; Secure" in https.set_cookie(KEYS, session)
    framed = CookiePolicy.from_settings(
        Settings(portal_frame_ancestors="'self' https://app.example.com")
    ).set_cookie(KEYS, session)
    assert "SameSite=None" in framed and "Secure" in framed and "Partitioned" in framed


def test_csrf_tokens_belong_to_their_session() -> None:
    token = csrf_token(KEYS, "s1")
    assert csrf_matches(KEYS, "s1", token)
    assert not csrf_matches(KEYS, "s2", token)
    assert not csrf_matches(KEYS, "s1", None)
    assert not csrf_matches(KEYS, "s1", token[:-1])


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"WEBHOOK_PORTAL_BRAND_COLOR": "red"}, "BRAND_COLOR"),
        ({"WEBHOOK_PORTAL_LOGO_URL": "javascript:alert(1)"}, "LOGO_URL"),
        ({"WEBHOOK_PORTAL_FRAME_ANCESTORS": "'self'; script-src *"}, "FRAME_ANCESTORS"),
        ({"WEBHOOK_PORTAL_KEY": "short"}, "PORTAL_KEY"),
        ({"WEBHOOK_PORTAL_IDLE": "soon"}, "PORTAL_IDLE"),
    ],
)
def test_bad_portal_settings_are_one_line_errors(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        Settings.from_env(env)


def test_portal_settings_parse() -> None:
    settings = Settings.from_env(
        {
            "WEBHOOK_PORTAL_IDLE": "15m",
            "WEBHOOK_PORTAL_BRAND_COLOR": "#ff0066",
            "WEBHOOK_PORTAL_LOGO_URL": "https://cdn.example.com/logo.svg",
            "WEBHOOK_PORTAL_FRAME_ANCESTORS": "https://app.example.com",
        }
    )
    assert settings.portal_idle_ms == 900_000
    assert settings.portal_brand_color == "#ff0066"
    assert settings.portal_logo_url == "https://cdn.example.com/logo.svg"
