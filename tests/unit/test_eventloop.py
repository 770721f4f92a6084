"""worker.eventloop: the long-running commands' loop is uvloop unless asked for asyncio's."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from worker import eventloop
from worker.config import Settings


async def _loop_type() -> type[asyncio.AbstractEventLoop]:
    return type(asyncio.get_running_loop())


def test_uvloop_is_the_default() -> None:
    assert Settings.from_env({}).event_loop == "uvloop"
    assert issubclass(eventloop.run(_loop_type()), uvloop.Loop)


def test_asyncio_on_request() -> None:
    assert Settings.from_env({"WEBHOOK_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"
    used = eventloop.run(_loop_type(), "asyncio")
    assert not issubclass(used, uvloop.Loop)
    assert issubclass(used, asyncio.BaseEventLoop)


def test_result_and_exception_pass_through() -> None:
    async def fails() -> None:
        raise LookupError("boom")

    with pytest.raises(LookupError, match="boom"):
        eventloop.run(fails())
