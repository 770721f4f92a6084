"""Helpers of the portal's browser tests of its pages: make an endpoint through the API,
open a page fresh, screenshot one element, record what the page sends, and read the
delivery log's rows."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.remote.webelement import WebElement

from tests.support.browser import ARTIFACTS, find
from tests.support.portal_stack import Stack

__all__ = ["SPY", "create_sub", "delivery_events", "open_page", "sent_calls", "shot"]

SPY = """
window.__sent = [];
const original = window.fetch;
window.fetch = (url, options) => {
  if (options && options.method && options.method !== "GET") {
    window.__sent.push({url: String(url), method: options.method, body: options.body || null});
  }
  return original(url, options);
};
"""


def create_sub(stack: Stack, workspace: str, name: str, **extra: Any) -> dict[str, Any]:
    body = {"url": stack.endpoint(name), "events": ["contact.*"], "name": name, **extra}
    response = stack.client(workspace).post(f"/v1/workspaces/{workspace}/subscriptions", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    stack.receiver.rekey(name, created["secret"])
    return created


def open_page(stack: Stack, path: str, ready: str) -> None:
    stack.driver.get("about:blank")  # a fresh page even when only the fragment is the same
    stack.driver.get(f"{stack.api.url}/portal/#{path}")
    find(stack.driver, ready, 20)


def shot(element: WebElement, name: str) -> None:
    """A screenshot of one element (tests/artifacts/<name>.png)."""
    ARTIFACTS.mkdir(exist_ok=True)
    element.screenshot(str(ARTIFACTS / f"{name}.png"))


def sent_calls(stack: Stack) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = stack.driver.execute_script("return window.__sent || []")
    return sent


def delivery_events(stack: Stack) -> list[str | None]:
    """The event id of each row of the delivery log shown, top to bottom."""
    return [
        r.get_attribute("data-event")
        for r in stack.driver.find_elements("css selector", "tr.delivery")
    ]
