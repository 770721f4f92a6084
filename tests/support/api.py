"""Running the real management API from tests: ``run_api`` on its own event loop in a thread,
on a free port of 127.0.0.1, with API tokens made by the product's own token writer; and the
API beside a running worker and a receiver."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import httpx

from tests.support.receiver import Receiver
from tests.support.worker import ThreadWorker, running
from worker.api.server import run_api
from worker.codec.avro import AvroCodec
from worker.config import Settings
from worker.kafka.clients import make_producer
from worker.tokens.registry import TokenRegistry, open_registry
from worker.tokens.writer import TokenWriter


class ThreadApi(ThreadWorker):
    """``run_api`` in a background thread; ``url`` is its base URL once started."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, stop: asyncio.Event, started: Callable[[int], None]) -> None:
        await run_api(self.settings, stop=stop, on_started=started, host="127.0.0.1")

    def start(self, timeout: float = 60) -> ThreadApi:
        super().start(timeout)
        self.wait_ready(timeout)
        return self


@dataclass
class Tokens:
    """Makes API tokens the way ``tokens create`` does (through the product's writer)."""

    writer: TokenWriter
    registry: TokenRegistry

    def workspace(self, workspace: str, name: str = "test") -> str:
        return self.writer.create(workspace=workspace, admin=False, name=name)[1]

    def admin(self, name: str = "admin") -> str:
        return self.writer.create(workspace=None, admin=True, name=name)[1]

    def revoke(self, token: str) -> None:
        token_id = token.split("_")[1]
        assert self.registry.wait_caught_up(10)
        for _ in range(100):  # the registry sees the token a poll after it was written
            if self.registry.get(token_id) is not None:
                break
            threading.Event().wait(0.05)
        self.writer.revoke(token_id)


def api_settings(settings: Settings, data_dir: str) -> Settings:
    return replace(settings, api_port=0, api_data_dir=data_dir, api_rate_limit=0)


@contextmanager
def running_api(settings: Settings) -> Iterator[ThreadApi]:
    api = ThreadApi(settings).start()
    try:
        yield api
    finally:
        api.stop()


@contextmanager
def token_maker(settings: Settings) -> Iterator[Tokens]:
    avro = AvroCodec()
    registry = open_registry(settings, avro)
    try:
        yield Tokens(TokenWriter(settings, make_producer(settings), avro, registry), registry)
    finally:
        registry.stop()


def client(api: ThreadApi, token: str | None, *, valid: bool = True) -> httpx.Client:
    """An HTTP client of the API; with a token, once the API accepts it (a token made a moment
    ago reaches the API's registry through the api-tokens topic within a poll, ~0.1 s)."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    if token and valid:
        deadline = time.monotonic() + 10
        with httpx.Client(base_url=api.url, headers=headers, timeout=30) as probe:
            while probe.get("/v1/event-types").status_code == 401:
                assert time.monotonic() < deadline, "the API never accepted a new token"
                time.sleep(0.05)
    return httpx.Client(base_url=api.url, headers=headers, timeout=30)


@contextmanager
def api_with_worker(
    settings: Settings,
) -> Iterator[tuple[Receiver, Tokens, ThreadApi, httpx.Client]]:
    """A receiver, the API and the worker on ``settings``, and a client of workspace acme."""
    with (
        Receiver() as receiver,
        token_maker(settings) as tokens,
        running_api(settings) as api,
        running(settings),
        client(api, tokens.workspace("acme")) as acme,
    ):
        yield receiver, tokens, api, acme
