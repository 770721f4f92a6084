"""One root: every exception class the package defines derives from WebhookWorkerError
(except the documented few that are not errors of the package), keeps the built-in base its
callers catch, and is named in the tree documented in worker/errors.py."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import worker
from worker import errors
from worker.config import ConfigError
from worker.subscriptions.service import NotFound
from worker.subscriptions.store import InvalidSubscription

# Not errors of the package: an HTTP answer, and socket-level signals the delivery client
# raises and catches itself (OSError family, as asyncio's transports expect); private ones.
# The input decoder's signals to the router (not an event; wait for the registry).
OUTSIDE = {
    "Problem",
    "BodyTooLarge",
    "BlockedDestination",
    "ProxyError",
    "ConnectionClosed",
    "SkippedError",
    "PartitionHeldError",
}


def defined_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(worker.__path__, "worker."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == info.name
                and not name.startswith("_")
            ):
                found[name] = value
    return found


def test_every_exception_has_the_root_and_is_documented() -> None:
    found = defined_exceptions()
    assert len(found) > 25
    outside_the_tree = sorted(
        name
        for name, cls in found.items()
        if not issubclass(cls, errors.WebhookWorkerError) and name not in OUTSIDE
    )
    assert outside_the_tree == []
    tree = errors.__doc__ or ""
    undocumented = sorted(name for name in found if name not in OUTSIDE and name not in tree)
    assert undocumented == []


def test_the_built_in_bases_stay() -> None:
    assert issubclass(ConfigError, ValueError) and issubclass(InvalidSubscription, ValueError)
    assert issubclass(NotFound, LookupError)
    assert issubclass(errors.BackendError, RuntimeError)
