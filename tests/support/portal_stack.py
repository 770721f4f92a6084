"""The portal's browser-test stack: the real API, worker, receivers and a headless Chromium
on the session's broker, with helpers to open a workspace's link, emit catalogue examples
and read subscriptions through the bearer API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver

from tests.support.api import ThreadApi, Tokens, client, running_api, token_maker
from tests.support.browser import chromium, console_errors, find
from tests.support.kafka import produce_json
from tests.support.portal import new_link, portal_settings
from tests.support.receiver import Receiver, Reply
from tests.support.worker import running
from worker.catalogue import Catalogue, example_catalogue_path
from worker.config import Settings

PLACEHOLDER = "whsec_" + "C" * 32
CATALOGUE = Catalogue.load(example_catalogue_path())


@dataclass
class Stack:
    api: ThreadApi
    tokens: Tokens
    receiver: Receiver
    settings: Settings
    driver: webdriver.Chrome
    bearer: dict[str, httpx.Client] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)
    secrets: dict[str, str] = field(default_factory=dict)  # shown once by the page

    def client(self, workspace: str) -> httpx.Client:
        if workspace not in self.bearer:
            self.bearer[workspace] = client(self.api, self.tokens.workspace(workspace))
        return self.bearer[workspace]

    def endpoint(self, name: str, status: int = 500) -> str:
        """A receiver endpoint that passes challenges; events fail with ``status`` while
        ``name`` is in ``failing``."""

        def reply(_n: int, body: bytes) -> Reply:
            if b'"challenge"' in body or name not in self.failing:
                return Reply(200, body=b"ok from " + name.encode())
            return Reply(status, body=b"failing on purpose")

        return self.receiver.endpoint(name, PLACEHOLDER, reply)

    def open(self, workspace: str) -> None:
        self.driver.get(new_link(self.client(workspace), workspace))
        find(self.driver, "#nav a")
        find(self.driver, "h1")

    def events(self, workspace: str, *kinds: str) -> list[str]:
        events = [CATALOGUE.example_event(kind, workspace) for kind in kinds]
        produce_json(
            self.settings.bootstrap_servers or "",
            self.settings.input_topic_list()[0],
            events,
            key=lambda e: str(e["record"]["id"]),
        )
        return [str(e["id"]) for e in events]

    def sub(self, workspace: str, sub_id: str) -> dict[str, Any]:
        response = self.client(workspace).get(f"/v1/workspaces/{workspace}/subscriptions/{sub_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def no_console_errors(self) -> None:
        errors = console_errors(self.driver)
        assert not errors, errors


@contextmanager
def portal_stack(kafka_bootstrap: str, directory: Path) -> Iterator[Stack]:
    """The whole stack for one test module."""
    settings = portal_settings(kafka_bootstrap, directory)
    with (
        Receiver() as receiver,
        token_maker(settings) as tokens,
        running_api(settings) as api,
        running(settings),
        chromium() as driver,
    ):
        stack = Stack(api, tokens, receiver, settings, driver)
        try:
            yield stack
        finally:
            for c in stack.bearer.values():
                c.close()


def module_stack(name: str, session: str | None = None) -> Callable[..., Iterator[Stack]]:
    """A module-scoped ``stack`` fixture (assign it to ``stack`` in the test module): the
    whole stack in a temporary directory called ``name``, with ``session``'s portal session
    open when given (the one every test of the module starts from)."""

    @pytest.fixture(scope="module")
    def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
        with portal_stack(kafka_bootstrap, tmp_path_factory.mktemp(name)) as built:
            if session is not None:
                built.open(session)
            yield built

    return stack
