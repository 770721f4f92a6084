"""Patterns, conditions, rendering, the index and secrets: no broker needed."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.model import Event
from worker.subscriptions.conditions import matches, parse_condition
from worker.subscriptions.index import SubscriptionIndex
from worker.subscriptions.model import SecretEntry, Status, Subscription
from worker.subscriptions.patterns import pattern_matches, validate_pattern
from worker.subscriptions.render import render_body
from worker.subscriptions.secrets import (
    SecretBox,
    SecretsError,
    generate_secret,
    open_subscription,
    seal_subscription,
)


def sub(sub_id: str, workspace: str, *events: str, **kw) -> Subscription:
    return Subscription(sub_id, workspace, "https://x", events, (SecretEntry("whsec_a"),), **kw)


def event(kind: str, workspace: str = "acme", entity: str | None = None, **data) -> Event:
    body = {"event": kind, "workspace": workspace, **data}
    return Event("e1", kind, workspace, entity, 0, body, "t/0/0")


def test_pattern_validation():
    for good in ("*", "record.created", "contact.*", "a.b.*", "record.saved"):
        assert validate_pattern(good) == good
    for bad in ("", "a b", "a.*.b", "**", "a.", ".a", "a.**"):
        with pytest.raises(ValueError, match="malformed event pattern"):
            validate_pattern(bad)


_PART = st.sampled_from(["a", "b", "created", "updated", "saved"])
_KIND = st.lists(_PART, min_size=1, max_size=3).map(".".join)
_PATTERN = st.one_of(st.just("*"), _KIND, _KIND.map(lambda k: k + ".*"))


@given(_PATTERN, _KIND)
def test_pattern_matches_agrees_with_the_index(pattern: str, kind: str) -> None:
    # The catalogue asks pattern_matches; the router asks the index: one rule.
    index = SubscriptionIndex()
    index.upsert(sub("s", "acme", pattern))
    assert pattern_matches(pattern, kind) == bool(index.match(event(kind)))


def test_index_semantics():
    index = SubscriptionIndex()
    index.upsert(sub("all", "acme", "*"))
    index.upsert(sub("contacts", "acme", "contact.*"))
    index.upsert(sub("saved", "acme", "contact.saved"))
    index.upsert(sub("deal", "acme", "deal.created", entity="deal"))
    index.upsert(sub("other", "globex", "*"))
    index.upsert(sub("pending", "acme", "*", status=Status.PENDING))

    def ids(e: Event) -> set[str]:
        return {s.id for s in index.match(e)}

    assert ids(event("contact.created")) == {"all", "contacts", "saved"}
    assert ids(event("contact.updated")) == {"all", "contacts", "saved"}
    assert ids(event("contact.deleted")) == {"all", "contacts"}
    assert ids(event("deal.created", entity="deal")) == {"all", "deal"}
    assert ids(event("deal.created", entity="contact")) == {"all"}
    assert ids(event("contact.created", workspace="globex")) == {"other"}
    index.upsert(sub("contacts", "globex", "contact.*"))  # moved workspace
    assert ids(event("contact.created")) == {"all", "saved"}
    index.remove("all")
    assert ids(event("contact.created")) == {"saved"}


def test_conditions():
    assert parse_condition("changes.stage.new=closed_won").op == "eq"
    assert parse_condition("record.stage=a|b").values == ("a", "b")
    assert parse_condition("record.email?").op == "exists"
    for bad in ("nothing", "=x", "a..b=1", "a=|"):
        with pytest.raises(ValueError, match="malformed filter"):
            parse_condition(bad)
    data = {"changes": {"stage": {"new": "closed_won"}}, "record": {"n": 3, "ok": True}}
    assert matches([parse_condition("changes.stage.new=closed_won")], data)
    assert not matches([parse_condition("changes.stage.new=lost")], data)
    assert matches([parse_condition("record.n=2|3"), parse_condition("record.ok=true")], data)
    assert not matches([parse_condition("record.missing?")], data)


def test_render_selects_fields_and_keeps_changes_only_on_updates():
    e = event(
        "contact.created",
        record={"id": "1", "name": "Jane", "email": "j@x"},
        changes={"name": {"old": "a", "new": "b"}},
    )
    body = orjson.loads(render_body(e, sub("s", "acme", "*", fields=("name",))))
    assert body["record"] == {"id": "1", "name": "Jane"}
    assert "changes" not in body
    u = event("contact.updated", changes={"name": {"old": "a", "new": "b"}})
    assert "changes" in orjson.loads(render_body(u, sub("s", "acme", "*")))
    assert "changes" in e.data  # the shared event is never mutated


def test_secrets_sealed_at_rest():
    box = SecretBox(SecretBox.generate_key())
    secret = generate_secret()
    plain = Subscription("s", "w", "https://x", ("*",), (SecretEntry(secret),))
    sealed = seal_subscription(plain, box)
    assert secret not in repr(sealed.secrets[0].secret)
    assert sealed.secrets[0].secret.startswith("enc:v1:")
    assert open_subscription(sealed, box) == plain
    with pytest.raises(SecretsError, match="WEBHOOK_SECRETS_KEY is not set"):
        open_subscription(sealed, None)
    with pytest.raises(SecretsError, match="cannot be decrypted"):
        open_subscription(sealed, SecretBox(SecretBox.generate_key()))
    with pytest.raises(ValueError, match="32 random bytes"):
        SecretBox("short")


KINDS = ["a.created", "a.updated", "a.deleted", "b.created", "b.x.y"]
PATTERNS = ["*", "a.*", "b.*", "b.x.*", "a.saved", "a.created", "b.x.y", "a.deleted"]


def reference(subs: list[Subscription], e: Event) -> set[str]:
    def hit(p: str) -> bool:
        if p == "*" or p == e.event:
            return True
        if p.endswith(".*"):
            return e.event.startswith(p[:-1])
        return p.endswith(".saved") and e.event in (p[:-5] + "created", p[:-5] + "updated")

    return {s.id for s in subs if s.workspace == e.workspace and any(hit(p) for p in s.events)}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["w1", "w2", "w3"]),
            st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=3),
        ),
        max_size=25,
    ),
    st.lists(st.tuples(st.sampled_from(["w1", "w2", "w3"]), st.sampled_from(KINDS)), max_size=20),
)
def test_index_equals_brute_force(specs, events):
    index = SubscriptionIndex()
    subs = [sub(f"s{i}", ws, *patterns) for i, (ws, patterns) in enumerate(specs)]
    for s in subs:
        index.upsert(s)
    for ws, kind in events:
        e = event(kind, workspace=ws)
        assert {s.id for s in index.match(e)} == reference(subs, e)
