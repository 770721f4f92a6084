"""The portal as a new user tried it, in a real Chromium against the real API, worker and
receivers: the defects found that way stay fixed. An edit keeps the ordering scope and sends
only what changed; limits come from the OpenAPI schema and every error shows next to its
field, all at once, in words for a customer; a long name wraps; Disable asks first and a
disabled endpoint has one Enable button; the catalogue shows code, not backticks, and
examples in the session's workspace; the log refreshes itself and a row keeps its first
attempt's time. (The re-send / Redrive all defect is in test_portal_browser.py.)"""

from __future__ import annotations

import json
from typing import Any

import httpx
from selenium.webdriver.support.ui import Select

from tests.support.browser import console_errors, find, screenshot, texts, wait
from tests.support.portal_pages import SPY, create_sub, delivery_events, open_page, sent_calls
from tests.support.portal_stack import Stack, module_stack

# The acme session every test uses (one opens globex and back).
stack = module_stack("portal-fixes", session="acme")


def test_an_edit_keeps_the_ordering_scope_and_sends_only_what_changed(stack: Stack) -> None:
    driver = stack.driver
    stack.open("acme")
    sub = create_sub(stack, "acme", "keyed")  # the API's default: scope key, max in flight 10
    assert (sub["ordering"], sub["max_in_flight"]) == ("key", 10)
    open_page(stack, f"/subs/{sub['id']}/edit", "#ordering")
    options = [o.get_attribute("value") for o in Select(find(driver, "#ordering")).options]
    assert options == ["key", "endpoint", "none"]
    assert Select(find(driver, "#ordering")).first_selected_option.get_attribute("value") == "key"
    assert find(driver, "#max-in-flight").get_attribute("value") == "10"
    driver.execute_script(SPY)
    find(driver, "#description").send_keys("only this changes")
    find(driver, "#save").click()
    find(driver, "#test")
    patches = [s for s in sent_calls(stack) if s["method"] == "PATCH"]
    assert [json.loads(p["body"]) for p in patches] == [{"description": "only this changes"}]
    stored = stack.sub("acme", sub["id"])
    assert (stored["ordering"], stored["max_in_flight"]) == ("key", 10)
    assert stored["description"] == "only this changes"
    # The scope and max in flight are editable too.
    open_page(stack, f"/subs/{sub['id']}/edit", "#ordering")
    Select(find(driver, "#ordering")).select_by_value("none")
    max_in_flight = find(driver, "#max-in-flight")
    max_in_flight.clear()
    max_in_flight.send_keys("25")
    find(driver, "#save").click()
    find(driver, "#test")
    stored = stack.sub("acme", sub["id"])
    assert (stored["ordering"], stored["max_in_flight"]) == ("none", 25)
    stack.no_console_errors()


def test_limits_come_from_the_schema_and_every_error_shows_next_to_its_field(
    stack: Stack,
) -> None:
    driver = stack.driver
    schema = httpx.get(f"{stack.api.url}/openapi.json").json()["components"]["schemas"]
    create = schema["SubscriptionCreate"]["properties"]
    open_page(stack, "/new", "#name")
    assert find(driver, "#description").get_attribute("maxlength") == str(
        create["description"]["maxLength"]
    )
    assert find(driver, "#name").get_attribute("maxlength") == str(create["name"]["maxLength"])
    driver.execute_script(SPY)
    # Empty name, a URL with a space, a description over the limit (set past maxlength).
    find(driver, "#url").send_keys("http://exa mple.com/x")
    driver.execute_script(
        "document.querySelector('#description').value = 'x'.repeat(arguments[0])",
        create["description"]["maxLength"] + 1,
    )
    find(driver, "#select-all").click()
    find(driver, "#save").click()
    for field in ("name", "url", "description"):
        error = find(driver, f"#err-{field}")
        assert error.text, field
        assert find(driver, f"#{field}").get_attribute("aria-invalid") == "true"
    assert "not a valid URL" in find(driver, "#err-url").text
    assert "Fix the 3 fields" in find(driver, ".form-errors").text
    assert not sent_calls(stack), "nothing is sent while the form has errors"
    screenshot(driver, "portal-form-errors")
    # The server holds the same limits, and says which field, in the same words.
    c = stack.client("acme")
    refused = c.post(
        "/v1/workspaces/acme/subscriptions",
        json={"url": "http://exa mple.com/x", "events": ["contact.*"], "name": ""},
    )
    assert refused.status_code == 422
    assert {e["field"] for e in refused.json()["errors"]} == {"name"}
    spaced = c.post(
        "/v1/workspaces/acme/subscriptions",
        json={"url": "http://exa mple.com/x", "events": ["contact.*"], "name": "n"},
    )
    assert spaced.status_code == 422, spaced.text
    assert spaced.json()["errors"][0]["field"] == "url"
    long = c.post(
        "/v1/workspaces/acme/subscriptions",
        json={"url": "http://x.example", "events": ["*"], "description": "d" * 1001},
    )
    assert long.json()["errors"] == [
        {"field": "description", "message": "At most 1000 characters."}
    ]
    stack.no_console_errors()


def test_server_errors_show_next_to_their_fields_in_customer_words(stack: Stack) -> None:
    driver = stack.driver
    open_page(stack, "/new", "#name")
    find(driver, "#name").send_keys("Nobody home")
    find(driver, "#url").send_keys("http://127.0.0.1:1/hook")  # refuses connections
    find(driver, "#all-contact").click()
    find(driver, "details.advanced summary").click()
    find(driver, "#other-events").send_keys("nosuch.thing")
    find(driver, "#save").click()
    error = find(driver, "#err-events", 20)
    assert "Not an event type of this service: nosuch.thing." in error.text
    main = find(driver, "main").text
    assert "event-types list" not in main and "`" not in main
    find(driver, "#other-events").clear()
    find(driver, "#save").click()
    wait(lambda: "could not connect" in find(driver, "#err-url").text, 20, "url error")
    main = find(driver, "main").text
    for raw in ("Errno", "ConnectionRefused", "127.0.0.1', 1", "challenge to"):
        assert raw not in main, raw
    screenshot(driver, "portal-server-errors")
    console_errors(driver)  # the 422s above are expected


def test_a_long_name_wraps_instead_of_widening_the_table(stack: Stack) -> None:
    driver = stack.driver
    create_sub(stack, "acme", "n" * 200)
    open_page(stack, "/", "tr.sub")
    width = driver.execute_script("return window.innerWidth")
    assert driver.execute_script("return document.documentElement.scrollWidth") <= width
    stack.no_console_errors()


def test_disable_asks_first_and_a_disabled_endpoint_has_one_enable_button(stack: Stack) -> None:
    driver = stack.driver
    sub = create_sub(stack, "acme", "toggled")
    open_page(stack, f"/subs/{sub['id']}", "#disable")
    find(driver, "#disable").click()
    dialog = find(driver, "dialog[open]")
    assert "Disable this webhook?" in dialog.text
    dialog.find_element("css selector", "button:not(.confirm)").click()  # Cancel
    assert stack.sub("acme", sub["id"])["status"] == "ACTIVE"
    find(driver, "#disable").click()
    find(driver, "dialog .confirm").click()
    find(driver, "#enable")
    assert stack.sub("acme", sub["id"])["status"] == "DISABLED"
    enables = [b for b in driver.find_elements("css selector", "main button") if b.text == "Enable"]
    assert len(enables) == 1
    find(driver, "#enable").click()
    find(driver, "#disable")
    stack.no_console_errors()


def test_the_catalogue_shows_code_not_backticks_and_examples_in_the_workspace(
    stack: Stack,
) -> None:
    driver = stack.driver
    stack.open("globex")
    open_page(stack, "/catalogue", "details.event-type")
    summaries = texts(driver, "details.event-type summary")
    assert summaries and not any("`" in s for s in summaries)
    assert driver.find_elements(
        "css selector",
        "details.event-type summary code + code, details.event-type summary code ~ code",
    )
    first = find(driver, "details.event-type summary")
    first.click()
    example = json.loads(find(driver, "pre.example").text)
    assert example["workspace"] == "globex"
    stack.no_console_errors()
    stack.open("acme")


def test_the_log_refreshes_itself_filters_and_keeps_the_first_attempts_time(
    stack: Stack,
) -> None:
    driver = stack.driver
    sub = create_sub(stack, "acme", "logged")
    open_page(stack, f"/subs/{sub['id']}", "#auto-refresh")
    assert find(driver, "#auto-refresh").is_selected()
    ids = stack.events("acme", "contact.created", "contact.updated")
    # No click on Refresh: the rows come by themselves.
    wait(lambda: len(driver.find_elements("css selector", "tr.delivery")) == 2, 30, "two rows")
    # Search by event id, then by event type.
    find(driver, "#log-search").send_keys(ids[0])
    wait(lambda: delivery_events(stack) == [ids[0]], 15, "search")
    find(driver, "#log-search").clear()
    Select(find(driver, "#log-event")).select_by_value("contact.updated")
    wait(lambda: delivery_events(stack) == [ids[1]], 15, "type")
    Select(find(driver, "#log-event")).select_by_value("")
    # A delivery retried later keeps its first attempt's time.
    stack.failing.add("logged")
    [retried] = stack.events("acme", "contact.deleted")

    def row() -> Any:
        for r in driver.find_elements("css selector", "tr.delivery"):
            if (
                r.get_attribute("data-event") == retried
                and r.find_element("css selector", "td:nth-child(4)").text == "3"
            ):
                return r
        return None

    found = wait(row, 30, "the retried delivery with three attempts")
    shown = found.find_element("css selector", "td.time").text
    expected = driver.execute_script(
        "return new Date(arguments[0]).toLocaleString()", found.get_attribute("data-first")
    )
    assert shown == expected
    stack.failing.discard("logged")
    stack.no_console_errors()
