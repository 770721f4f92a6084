"""The portal's depth views in a real Chromium against the real API, worker and receivers:
attempt detail, recover, health on the list and the activity chart, Send test with an
edited example, every setting on the detail page, dark mode. Screenshots of the views go to
tests/artifacts/ (docs/portal/ holds the ones the docs show)."""

from __future__ import annotations

import json
import time

from selenium.webdriver.support.ui import Select

from tests.support.browser import find, screenshot, wait
from tests.support.portal_pages import create_sub, open_page, shot
from tests.support.portal_stack import Stack, module_stack

# The acme session every test uses (one opens globex and back).
stack = module_stack("portal-depth", session="acme")


def test_attempt_detail_shows_the_request_as_sent_and_the_response(stack: Stack) -> None:
    driver = stack.driver
    sub = create_sub(stack, "acme", "detailed", headers={"X-Api-Key": "s3cret"})
    stack.failing.add("detailed")
    [event_id] = stack.events("acme", "contact.created")
    open_page(stack, f"/subs/{sub['id']}", "#auto-refresh")
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
    sub = create_sub(stack, "acme", "recovered")
    stack.failing.add("recovered")
    events = stack.events("acme", "contact.created", "contact.updated")
    path = f"/v1/workspaces/acme/subscriptions/{sub['id']}/dead-letters"
    wait(lambda: len(stack.client("acme").get(path).json()["data"]) == 2, 30, "two letters")
    stack.failing.discard("recovered")
    open_page(stack, f"/subs/{sub['id']}", "#recover")
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
    sub = create_sub(stack, "acme", "charted")
    stack.events("acme", "contact.created", "contact.updated")
    stack.receiver.wait_for_success("charted", 3, 30)
    stack.failing.add("charted")
    stack.events("acme", "contact.deleted")
    path = f"/v1/workspaces/acme/subscriptions/{sub['id']}/health"
    wait(lambda: stack.client("acme").get(path).json()["consecutive_failures"] == 3, 30, "fails")
    stack.failing.discard("charted")
    open_page(stack, "/", f'tr.sub[data-id="{sub["id"]}"] .health')
    cell = find(driver, f'tr.sub[data-id="{sub["id"]}"] .health')
    assert "40% in 24 h" in cell.text and "3 failed in a row" in cell.text
    open_page(stack, f"/subs/{sub['id']}", "svg.chart rect.bad")
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
    sub = create_sub(stack, "acme", "tested")
    open_page(stack, f"/subs/{sub['id']}", "#test")
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
    sub = create_sub(
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
    open_page(stack, f"/subs/{sub['id']}", ".settings-list")
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
