"""The portal as a new user tries it, in a real Chromium against the real API, worker and
receivers: the defects found that way stay fixed (an edit keeps the ordering scope and sends
only what changed; limits come from the OpenAPI schema and every error shows next to its
field in words for a customer; a long name wraps; Disable asks first; one Enable button;
catalogue prose and examples; the log refreshes itself and a row keeps its first attempt's
time), and the depth views work: attempt detail, recover, filters, health and the activity
chart, Send test with an edited example, every setting on the detail page, dark mode.
Screenshots of the views go to tests/artifacts/ (docs/portal/ holds the ones the docs show)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from tests.support.browser import ARTIFACTS, console_errors, find, screenshot, texts, wait
from tests.support.portal_stack import Stack, portal_stack

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


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with portal_stack(kafka_bootstrap, tmp_path_factory.mktemp("portal-depth")) as built:
        built.open("acme")  # the session every test uses (one opens globex and back)
        yield built


def _create(stack: Stack, workspace: str, name: str, **extra: Any) -> dict[str, Any]:
    body = {"url": stack.endpoint(name), "events": ["contact.*"], "name": name, **extra}
    response = stack.client(workspace).post(f"/v1/workspaces/{workspace}/subscriptions", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    stack.receiver.rekey(name, created["secret"])
    return created


def _open(stack: Stack, path: str, ready: str) -> None:
    stack.driver.get("about:blank")  # a fresh page even when only the fragment is the same
    stack.driver.get(f"{stack.api.url}/portal/#{path}")
    find(stack.driver, ready, 20)


def shot(element: WebElement, name: str) -> None:
    """A screenshot of one element (tests/artifacts/<name>.png)."""
    ARTIFACTS.mkdir(exist_ok=True)
    element.screenshot(str(ARTIFACTS / f"{name}.png"))


def _sent(stack: Stack) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = stack.driver.execute_script("return window.__sent || []")
    return sent


def test_an_edit_keeps_the_ordering_scope_and_sends_only_what_changed(stack: Stack) -> None:
    driver = stack.driver
    stack.open("acme")
    sub = _create(stack, "acme", "keyed")  # the API's default: scope key, max in flight 10
    assert (sub["ordering"], sub["max_in_flight"]) == ("key", 10)
    _open(stack, f"/subs/{sub['id']}/edit", "#ordering")
    options = [o.get_attribute("value") for o in Select(find(driver, "#ordering")).options]
    assert options == ["key", "endpoint", "none"]
    assert Select(find(driver, "#ordering")).first_selected_option.get_attribute("value") == "key"
    assert find(driver, "#max-in-flight").get_attribute("value") == "10"
    driver.execute_script(SPY)
    find(driver, "#description").send_keys("only this changes")
    find(driver, "#save").click()
    find(driver, "#test")
    patches = [s for s in _sent(stack) if s["method"] == "PATCH"]
    assert [json.loads(p["body"]) for p in patches] == [{"description": "only this changes"}]
    stored = stack.sub("acme", sub["id"])
    assert (stored["ordering"], stored["max_in_flight"]) == ("key", 10)
    assert stored["description"] == "only this changes"
    # The scope and max in flight are editable too.
    _open(stack, f"/subs/{sub['id']}/edit", "#ordering")
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
    _open(stack, "/new", "#name")
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
    assert not _sent(stack), "nothing is sent while the form has errors"
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
    _open(stack, "/new", "#name")
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
    _create(stack, "acme", "n" * 200)
    _open(stack, "/", "tr.sub")
    width = driver.execute_script("return window.innerWidth")
    assert driver.execute_script("return document.documentElement.scrollWidth") <= width
    stack.no_console_errors()


def test_disable_asks_first_and_a_disabled_endpoint_has_one_enable_button(stack: Stack) -> None:
    driver = stack.driver
    sub = _create(stack, "acme", "toggled")
    _open(stack, f"/subs/{sub['id']}", "#disable")
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
    _open(stack, "/catalogue", "details.event-type")
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
    sub = _create(stack, "acme", "logged")
    _open(stack, f"/subs/{sub['id']}", "#auto-refresh")
    assert find(driver, "#auto-refresh").is_selected()
    ids = stack.events("acme", "contact.created", "contact.updated")
    # No click on Refresh: the rows come by themselves.
    wait(lambda: len(driver.find_elements("css selector", "tr.delivery")) == 2, 30, "two rows")
    # Search by event id, then by event type.
    find(driver, "#log-search").send_keys(ids[0])
    wait(
        lambda: (
            [
                r.get_attribute("data-event")
                for r in driver.find_elements("css selector", "tr.delivery")
            ]
            == [ids[0]]
        ),
        15,
        "search",
    )
    find(driver, "#log-search").clear()
    Select(find(driver, "#log-event")).select_by_value("contact.updated")
    wait(
        lambda: (
            [
                r.get_attribute("data-event")
                for r in driver.find_elements("css selector", "tr.delivery")
            ]
            == [ids[1]]
        ),
        15,
        "type",
    )
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


def test_attempt_detail_shows_the_request_as_sent_and_the_response(stack: Stack) -> None:
    driver = stack.driver
    sub = _create(stack, "acme", "detailed", headers={"X-Api-Key": "s3cret"})
    stack.failing.add("detailed")
    [event_id] = stack.events("acme", "contact.created")
    _open(stack, f"/subs/{sub['id']}", "#auto-refresh")
    row = wait(
        lambda: next(
            (
                r
                for r in driver.find_elements("css selector", "tr.delivery")
                if r.get_attribute("data-event") == event_id
                and r.get_attribute("data-outcome") == "dead_letter"
            ),
            None,
        ),
        30,
        "the failed delivery",
    )
    find(driver, "#auto-refresh").click()  # hold the page still for the screenshot
    row.find_element("css selector", "button.details").click()
    attempt = find(driver, ".attempt")
    assert "Attempt 1" in attempt.text and "500" in attempt.text
    request = attempt.find_element("css selector", ".side.request").text
    assert "webhook-signature" in request and "v1," in request
    assert "x-api-key" in request and "s3cret" not in request and "(hidden)" in request
    assert event_id in find(driver, "pre.request-body").text
    assert find(driver, "pre.response-body").text == "failing on purpose"
    assert "18 bytes" in attempt.find_element("css selector", ".side.response").text
    shot(find(driver, "tr.attempts"), "portal-attempt-detail")
    stack.failing.discard("detailed")
    stack.no_console_errors()


def test_recover_counts_the_failed_deliveries_before_sending_them_again(stack: Stack) -> None:
    driver = stack.driver
    sub = _create(stack, "acme", "recovered")
    stack.failing.add("recovered")
    events = stack.events("acme", "contact.created", "contact.updated")
    path = f"/v1/workspaces/acme/subscriptions/{sub['id']}/dead-letters"
    wait(lambda: len(stack.client("acme").get(path).json()["data"]) == 2, 30, "two letters")
    stack.failing.discard("recovered")
    _open(stack, f"/subs/{sub['id']}", "#recover")
    find(driver, "#recover").click()
    wait(lambda: "2 failed deliveries" in find(driver, ".recover-count").text, 15, "count")
    assert find(driver, "dialog .confirm").text == "Re-send 2"
    shot(find(driver, "dialog[open]"), "portal-recover")
    before = len(stack.receiver.received("recovered"))
    find(driver, "dialog .confirm").click()
    assert "Sent again: 2" in find(driver, ".recovered").text
    got = stack.receiver.wait_for("recovered", before + 2, 30)[-2:]
    assert {g.json["id"] for g in got} == set(events) and all(g.verified for g in got)
    stack.no_console_errors()


def test_health_on_the_list_and_the_activity_chart(stack: Stack) -> None:
    driver = stack.driver
    sub = _create(stack, "acme", "charted")
    stack.events("acme", "contact.created", "contact.updated")
    stack.receiver.wait_for_success("charted", 3, 30)
    stack.failing.add("charted")
    stack.events("acme", "contact.deleted")
    path = f"/v1/workspaces/acme/subscriptions/{sub['id']}/health"
    wait(lambda: stack.client("acme").get(path).json()["consecutive_failures"] == 3, 30, "fails")
    stack.failing.discard("charted")
    _open(stack, "/", f'tr.sub[data-id="{sub["id"]}"] .health')
    cell = find(driver, f'tr.sub[data-id="{sub["id"]}"] .health')
    assert "40% in 24 h" in cell.text and "3 failed in a row" in cell.text
    _open(stack, f"/subs/{sub['id']}", "svg.chart rect.bad")
    tiles = find(driver, ".health-tiles").text
    assert "40%" in tiles and "5" in tiles
    assert len(driver.find_elements("css selector", "svg.chart rect.ok")) == 1
    legend = find(driver, "figure.activity .legend").text
    assert "Succeeded 2" in legend and "Failed 3" in legend
    find(driver, '.segmented button[data-window="7d"]').click()
    wait(
        lambda: (
            find(driver, '.segmented button[data-window="7d"]').get_attribute("aria-pressed")
            == "true"
        ),
        5,
        "7 days",
    )
    shot(find(driver, "figure.activity"), "portal-activity-chart")
    stack.no_console_errors()


def test_send_test_with_an_edited_example_is_recorded_as_a_test(stack: Stack) -> None:
    driver = stack.driver
    sub = _create(stack, "acme", "tested")
    _open(stack, f"/subs/{sub['id']}", "#test")
    find(driver, "#test").click()
    Select(find(driver, "#test-event")).select_by_value("contact.updated")
    payload = json.loads(find(driver, "#test-payload").get_attribute("value"))
    assert payload["event"] == "contact.updated" and payload["workspace"] == "acme"
    payload["record"]["name"] = "Edited by the test"
    driver.execute_script(
        "document.querySelector('#test-payload').value = arguments[0]", json.dumps(payload)
    )
    find(driver, "#send-test").click()
    wait(lambda: find(driver, ".test-status").text == "200", 15, "test status")
    got = stack.receiver.received("tested")[-1]
    assert got.json["record"]["name"] == "Edited by the test" and got.json["test"] is True
    assert got.verified
    wait(lambda: driver.find_elements("css selector", "tr.delivery .badge.test"), 30, "test row")
    stack.no_console_errors()


def test_the_detail_page_shows_every_setting_and_follows_dark_mode(stack: Stack) -> None:
    driver = stack.driver
    sub = _create(
        stack,
        "acme",
        "configured",
        filters=[{"path": "record.stage", "op": "in", "values": ["won", "lost"]}],
        headers={"X-Team": "crm"},
        rate_limit=5,
        timeout_ms=7000,
        ordering="none",
        max_in_flight=4,
        fields=["id", "record"],
    )
    _open(stack, f"/subs/{sub['id']}", ".settings-list")
    settings = find(driver, ".settings-list").text
    for shown in (
        "record.stage in won, lost",
        "X-Team",
        "Any order, in parallel",
        "4",
        "5 per second",
        "7000 ms",
        "id, record",
    ):
        assert shown in settings, shown
    assert "crm" not in settings  # a header's value may be a credential
    screenshot(driver, "portal-detail")
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
    )
    time.sleep(0.3)
    background = driver.execute_script(
        "return getComputedStyle(document.documentElement).backgroundColor"
    )
    assert background == "rgb(20, 23, 27)", background
    screenshot(driver, "portal-detail-dark")
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    stack.no_console_errors()
