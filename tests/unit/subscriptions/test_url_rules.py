"""What a subscription URL must look like before anything is looked up, and how a refusal
names its field in words for an end user (the API's problem ``errors``)."""

from __future__ import annotations

import pytest

from worker.api.problems import field_error
from worker.config import Settings
from worker.subscriptions.store import InvalidSubscription, validate_url

SETTINGS = Settings.from_env({}, allow_http=True, allow_private_networks=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://exa mple.com/x",
        "https://example.com/a b",
        "https://exa<mple.com/",
        "https://example.com/\tx",
        "ftp://example.com/",
        "example.com/x",
        "https:///path",
    ],
)
def test_malformed_urls_are_refused_before_any_lookup(url: str) -> None:
    with pytest.raises(InvalidSubscription) as caught:
        validate_url(url, SETTINGS)
    assert caught.value.field == "url"
    assert field_error(caught.value) == {
        "field": "url",
        "message": "This is not a valid URL. It looks like https://example.com/webhooks.",
    }


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hooks?x=1",
        "http://127.0.0.1:8080/h",
        "https://[::1]:8443/h",
        "https://bücher.example/h",
        "https://a-b.example.co.uk/%20x",
    ],
)
def test_well_formed_urls_pass(url: str) -> None:
    assert validate_url(url, SETTINGS) == url


def test_a_rule_without_public_words_becomes_a_sentence() -> None:
    error = InvalidSubscription("timeout must be more than 0 and at most 30s", field="timeout_ms")
    assert field_error(error) == {
        "field": "timeout_ms",
        "message": "Timeout must be more than 0 and at most 30s.",
    }
