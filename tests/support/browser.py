"""A real Chromium for end-to-end tests: Debian's ``chromium`` and ``chromium-driver``
(``scripts/test`` installs them), driven by Selenium, headless, with a fresh profile, its
console log kept for assertions."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webelement import WebElement

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
T = TypeVar("T")


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[webdriver.Chrome]:
    profile = tempfile.mkdtemp(prefix="portal-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(what: Callable[[], T | None], timeout: float = 15, message: str = "") -> T:
    """Poll ``what`` until it returns something truthy (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = what()
            if value:
                return value
        except Exception as exc:  # the page is still rendering
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s: {message} (last error: {last!r})")


def find(driver: webdriver.Chrome, css: str, timeout: float = 15) -> WebElement:
    """The first element matching ``css`` once it is displayed."""

    def shown() -> WebElement | None:
        for element in driver.find_elements("css selector", css):
            if element.is_displayed():
                return element
        return None

    try:
        return wait(shown, timeout, f"element {css}")
    except AssertionError as exc:
        page = driver.find_element("css selector", "body").text[:600]
        raise AssertionError(f"{exc}; the page shows: {page!r}") from None


def texts(driver: webdriver.Chrome, css: str) -> list[str]:
    return [e.text for e in driver.find_elements("css selector", css)]


def console_errors(driver: webdriver.Chrome, allowed: tuple[str, ...] = ()) -> list[Any]:
    """Severe browser-console entries since the last call, except those containing one of
    ``allowed``."""
    entries = driver.get_log("browser")
    return [
        e
        for e in entries
        if e.get("level") == "SEVERE" and not any(a in e.get("message", "") for a in allowed)
    ]


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
