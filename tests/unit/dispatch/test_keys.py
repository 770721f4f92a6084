"""The ordering key the router derives (contract, "Input events") and the lane it selects."""

from __future__ import annotations

from typing import Any

from worker.dispatch.ordering import head_key, key_digest, lane_of, parse_task_key, task_key
from worker.model import DeliveryTask, Event
from worker.router import ordering_key


def event(data: dict[str, Any], entity: str | None = "contact") -> Event:
    return Event("evt_1", "record.updated", "acme", entity, 0, data, "events/0/0")


def test_the_explicit_ordering_key_wins():
    data = {"ordering_key": "deal-7", "record": {"id": "a1"}}
    assert ordering_key(event(data), b"k") == b"deal-7"


def test_an_empty_ordering_key_falls_back_to_the_record():
    assert ordering_key(event({"ordering_key": "", "record": {"id": "a1"}}), None) == b"contact/a1"
    assert ordering_key(event({"ordering_key": 5, "record": {"id": "a1"}}), None) == b"contact/a1"


def test_a_number_and_its_decimal_string_are_the_same_id():
    by_number = ordering_key(event({"record": {"id": 42}}), None)
    assert by_number == ordering_key(event({"record": {"id": "42"}}), None) == b"contact/42"
    assert ordering_key(event({"record": {"id": 42.0}}), None) == b"contact/42"


def test_no_entity_gives_a_leading_slash():
    assert ordering_key(event({"record": {"id": "a1"}}, entity=None), None) == b"/a1"


def test_then_the_kafka_key_then_nothing():
    assert ordering_key(event({"record": {"name": "x"}}), b"acme") == b"acme"
    assert ordering_key(event({"record": {"id": True}}), b"acme") == b"acme"
    assert ordering_key(event({}), None) is None
    assert ordering_key(event({}), b"") is None


def task(**kw: Any) -> DeliveryTask:
    return DeliveryTask("m", "sub", "ws", "e", "t", b"{}", **kw)


def test_lanes_by_scope():
    assert lane_of(task()) == ("sub", None)  # written before scopes: ordered = endpoint
    assert lane_of(task(ordered=False)) is None
    assert lane_of(task(ordering="endpoint", ordering_key=b"k")) == ("sub", None)
    assert lane_of(task(ordering="key", ordering_key=b"k")) == ("sub", key_digest(b"k"))
    assert lane_of(task(ordering="key")) is None  # no key: not held behind any other
    assert lane_of(task(ordering="none", ordering_key=b"k")) is None


def test_parked_keys_keep_the_endpoint_spelling_and_name_the_key_lane():
    assert head_key(("sub", None)) == b"head/sub"
    assert task_key(("sub", None), 7) == b"task/sub/00000000000000000007"
    lane = ("sub", key_digest(b"contact/1"))
    other = ("sub", key_digest(b"contact/2"))
    assert head_key(lane) != head_key(other) and head_key(lane).startswith(b"head/sub/")
    for key, parsed in (
        (head_key(lane), ("head", lane, -1)),
        (task_key(lane, 9), ("task", lane, 9)),
        (b"head/sub", ("head", ("sub", None), -1)),
        (task_key(("sub", None), 7), ("task", ("sub", None), 7)),
    ):
        assert parse_task_key(key) == parsed
    assert parse_task_key(b"done/deliveries") is None
    assert parse_task_key(b"task/sub/zz/1") is None
