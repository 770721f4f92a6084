"""The in-memory subscription table, indexed by (workspace, event type).

Matching looks up only the event's workspace, then the exact type, each category prefix of
the type, and ``*``: its cost does not grow with subscriptions that cannot match. Writes come
from the table follower's thread and reads from the event loop: a write rebuilds the one
workspace's immutable bucket and swaps it in with a single assignment, so a reader always
sees a consistent bucket without locks.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from worker.model import Event
from worker.subscriptions.conditions import matches
from worker.subscriptions.model import Status, Subscription
from worker.subscriptions.patterns import category_prefix, expand_exact

__all__ = ["SubscriptionIndex"]

_EMPTY: tuple[Subscription, ...] = ()


@dataclass(frozen=True, slots=True)
class _Bucket:
    exact: dict[str, tuple[Subscription, ...]] = field(default_factory=dict)
    prefix: dict[str, tuple[Subscription, ...]] = field(default_factory=dict)
    star: tuple[Subscription, ...] = ()

    @classmethod
    def build(cls, subs: list[Subscription]) -> _Bucket:
        exact: dict[str, list[Subscription]] = {}
        prefix: dict[str, list[Subscription]] = {}
        star: list[Subscription] = []
        for sub in subs:
            if sub.status is Status.PENDING:
                continue
            seen: set[str] = set()
            for pattern in sub.events:
                key = category_prefix(pattern)
                if pattern == "*":
                    star.append(sub)
                elif key is not None:
                    if "p" + key not in seen:
                        prefix.setdefault(key, []).append(sub)
                        seen.add("p" + key)
                else:
                    for kind in expand_exact(pattern):
                        if "e" + kind not in seen:
                            exact.setdefault(kind, []).append(sub)
                            seen.add("e" + kind)
        return cls(
            {k: tuple(v) for k, v in exact.items()},
            {k: tuple(v) for k, v in prefix.items()},
            tuple(star),
        )


class SubscriptionIndex:
    """Subscriptions by id, and matching of events to them."""

    def __init__(self) -> None:
        self._by_id: dict[str, Subscription] = {}
        self._members: dict[str, dict[str, Subscription]] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()  # serialises writers only

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, sub_id: str) -> Subscription | None:
        return self._by_id.get(sub_id)

    def all(self) -> list[Subscription]:
        return list(self._by_id.values())

    def by_workspace(self, workspace: str) -> list[Subscription]:
        return list(self._members.get(workspace, {}).values())

    def upsert(self, sub: Subscription) -> Subscription | None:
        """Insert or replace; returns the previous version."""
        with self._lock:
            old = self._by_id.get(sub.id)
            if old is not None and old.workspace != sub.workspace:
                self._drop(old)
            self._members.setdefault(sub.workspace, {})[sub.id] = sub
            self._by_id[sub.id] = sub
            self._rebuild(sub.workspace)
            return old

    def remove(self, sub_id: str) -> Subscription | None:
        with self._lock:
            old = self._by_id.pop(sub_id, None)
            if old is not None:
                self._drop(old)
            return old

    def _drop(self, sub: Subscription) -> None:
        members = self._members.get(sub.workspace, {})
        members.pop(sub.id, None)
        if not members:
            self._members.pop(sub.workspace, None)
        self._rebuild(sub.workspace)

    def _rebuild(self, workspace: str) -> None:
        members = self._members.get(workspace)
        if members:
            self._buckets[workspace] = _Bucket.build(list(members.values()))
        else:
            self._buckets.pop(workspace, None)

    def match(self, event: Event) -> list[Subscription]:
        bucket = self._buckets.get(event.workspace)
        if bucket is None:
            return []
        kind = event.event
        found: list[Subscription] = [*bucket.star, *bucket.exact.get(kind, _EMPTY)]
        if bucket.prefix:
            dot = kind.find(".")
            while dot != -1:
                found.extend(bucket.prefix.get(kind[: dot + 1], _EMPTY))
                dot = kind.find(".", dot + 1)
        if not found:
            return found
        result: list[Subscription] = []
        seen: set[str] = set()
        for sub in found:
            if sub.id in seen:
                continue
            seen.add(sub.id)
            if sub.entity is not None and sub.entity != event.entity:
                continue
            if sub.conditions and not matches(sub.conditions, event.data):
                continue
            result.append(sub)
        return result
