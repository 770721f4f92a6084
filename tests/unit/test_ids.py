"""The webhook-id: receivers dedupe on it, so its text must never change across versions."""

from __future__ import annotations

import base64
import hashlib
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from worker.router import delivery_id


def reference(event_id: str, subscription_id: str) -> str:
    """The original definition: BLAKE2b-120 of both ids, standard base32, lower-cased."""
    digest = hashlib.blake2b(f"{event_id}\0{subscription_id}".encode(), digest_size=15).digest()
    return "msg_" + base64.b32encode(digest).decode().lower()


def test_known_ids_are_unchanged() -> None:
    # Produced by the first released version; a change here re-sends every replay as new.
    assert delivery_id("evt_1", "sub_1") == "msg_ptbcgwzbo4uwf3m5cchyle6u"
    assert delivery_id("", "") == "msg_2f5cmy64glcitznm63pg5baz"
    assert delivery_id("événement-🚀", "sub/ü") == "msg_cyesaem2aoccdedfhy42pmq5"


def test_matches_the_reference_on_many_random_ids() -> None:
    rng = random.Random(20240501)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789_-/.:\0é🚀"
    for _ in range(20_000):
        event_id = "".join(rng.choices(alphabet, k=rng.randrange(0, 40)))
        subscription_id = "".join(rng.choices(alphabet, k=rng.randrange(0, 40)))
        assert delivery_id(event_id, subscription_id) == reference(event_id, subscription_id)


@settings(max_examples=500, deadline=None)
@given(st.text(), st.text())
def test_matches_the_reference_on_any_text(event_id: str, subscription_id: str) -> None:
    result = delivery_id(event_id, subscription_id)
    assert result == reference(event_id, subscription_id)
    assert len(result) == 28
