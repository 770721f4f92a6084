"""The portal in a real Chromium, against the dev broker, the real API, the real worker and
real receivers: create with a category's Select All (the challenge passes) and see the
deliveries in the log; Test; disable and enable; roll the secret (both signatures during the
grace period); redrive a dead letter; an endpoint auto-disabled on 410 back to ACTIVE; one
workspace's link never shows another's webhooks; forged, expired and reused links show
nothing. Every page is checked for console errors; screenshots go to tests/artifacts/. The stack is
tests/support/portal_stack.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support.browser import console_errors, find, screenshot, texts, wait
from tests.support.portal import new_link
from tests.support.portal_stack import Stack, portal_stack
from worker.catalogue import Catalogue, example_catalogue_path

CATALOGUE = Catalogue.load(example_catalogue_path())


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with portal_stack(kafka_bootstrap, tmp_path_factory.mktemp("portal-browser")) as built:
        yield built


def _created_secret(stack: Stack) -> tuple[str, str]:
    """After the form: the secret shown once, and the new subscription's id."""
    secret = find(stack.driver, ".secret-value", 20).text
    href = find(stack.driver, "#open-created").get_attribute("href") or ""
    return secret, href.rsplit("/", 1)[1]


def _open_sub(stack: Stack, sub_id: str) -> None:
    stack.driver.get(f"{stack.api.url}/portal/#/subs/{sub_id}")
    find(stack.driver, "#test")


def test_create_with_select_all_then_the_deliveries_show_in_the_log(stack: Stack) -> None:
    driver = stack.driver
    url = stack.endpoint("crm")
    stack.open("acme")
    screenshot(driver, "portal-empty-list")
    find(driver, "#new-webhook").click()
    find(driver, "#name").send_keys("CRM sync")
    driver.find_element("css selector", "#description").send_keys("contacts to the CRM")
    driver.find_element("css selector", "#url").send_keys(url)
    select_contacts = find(driver, "#all-contact")
    select_contacts.send_keys(Keys.SPACE)  # by keyboard
    boxes = driver.find_elements("css selector", 'input.event[data-category="contact"]')
    assert boxes and all(b.is_selected() for b in boxes)
    screenshot(driver, "portal-create")
    find(driver, "#save").click()
    secret, sub_id = _created_secret(stack)
    assert secret.startswith("whsec_")
    stack.secrets["crm"] = secret
    # The challenge went out signed with the secret the page showed once.
    stack.receiver.rekey("crm", secret)
    challenge = stack.receiver.received("crm")[0]
    Webhook(secret).verify(challenge.body, challenge.headers)
    sub = stack.sub("acme", sub_id)
    assert sub["events"] == ["contact.*"] and sub["name"] == "CRM sync"
    ids = stack.events("acme", "contact.created", "contact.updated", "deal.created")
    got = stack.receiver.wait_for_success("crm", 3, 30)  # the challenge and two contacts
    assert {r.json["id"] for r in got[1:]} == set(ids[:2])
    assert all(r.verified for r in got[1:])
    find(driver, "#open-created").click()
    find(driver, 'button[data-tab="log"]')

    def two_rows() -> bool:
        if len(driver.find_elements("css selector", "tr.delivery")) >= 2:
            return True
        find(driver, "#refresh-log").click()
        time.sleep(0.3)
        return False

    wait(two_rows, 30, "two deliveries in the log")
    rows = driver.find_elements("css selector", "tr.delivery")
    assert {r.get_attribute("data-event") for r in rows} == set(ids[:2])
    assert all(r.get_attribute("data-outcome") == "success" for r in rows)
    rows[0].find_element("css selector", "button.details").click()
    body = find(driver, "pre.response-body")
    assert body.text == "ok from crm"
    assert "200" in texts(driver, ".attempt-status")
    screenshot(driver, "portal-log")
    stack.no_console_errors()


def test_test_button_then_disable_and_enable(stack: Stack) -> None:
    driver = stack.driver
    sub_id = next(s["id"] for s in _subs(stack, "acme") if s["name"] == "CRM sync")
    _open_sub(stack, sub_id)
    find(driver, "#test").click()
    find(driver, "#send-test").click()
    assert wait(lambda: find(driver, ".test-status").text == "200", 15, "test status")
    assert find(driver, ".test-body").text == "ok from crm"
    assert find(driver, ".test-latency").text.endswith("ms")
    screenshot(driver, "portal-test")
    find(driver, "#disable").click()
    find(driver, "dialog .confirm").click()  # Disable asks first, like Delete
    find(driver, "#enable")
    assert stack.sub("acme", sub_id)["status"] == "DISABLED"
    assert "DISABLED" in find(driver, ".sub-status .badge").text
    find(driver, "#enable").click()
    find(driver, "#disable")
    assert stack.sub("acme", sub_id)["status"] == "ACTIVE"
    stack.no_console_errors()


def _subs(stack: Stack, workspace: str) -> list[dict[str, Any]]:
    listed = stack.client(workspace).get(f"/v1/workspaces/{workspace}/subscriptions").json()
    data: list[dict[str, Any]] = listed["data"]
    return data


def test_roll_the_secret_and_both_sign_during_the_grace_period(stack: Stack) -> None:
    driver = stack.driver
    sub_id = next(s["id"] for s in _subs(stack, "acme") if s["name"] == "CRM sync")
    _open_sub(stack, sub_id)
    find(driver, "#roll").click()
    Select(find(driver, "#grace")).select_by_value("1h")
    find(driver, "dialog .confirm").click()
    new_secret = find(driver, ".secret-value").text
    assert "keeps signing until" in find(driver, ".secret-panel").text
    screenshot(driver, "portal-roll")
    before = len(stack.receiver.received("crm"))
    [event_id] = stack.events("acme", "contact.deleted")
    got = stack.receiver.wait_for("crm", before + 1, 30)[-1]
    assert got.json["id"] == event_id
    signatures = got.headers["webhook-signature"].split()
    assert len(signatures) == 2
    # Each secret verifies on its own: the one the create form showed and the new one.
    assert new_secret != stack.secrets["crm"]
    for secret in (new_secret, stack.secrets["crm"]):
        Webhook(secret).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "D" * 32).verify(got.body, got.headers)
    stack.no_console_errors()


def test_resend_a_failed_delivery_and_redrive_its_dead_letter(stack: Stack) -> None:
    driver = stack.driver
    url = stack.endpoint("flaky")
    created = stack.client("acme").post(
        "/v1/workspaces/acme/subscriptions",
        json={"url": url, "events": ["deal.*"], "name": "Deals"},
    )
    assert created.status_code == 201, created.text
    sub_id = created.json()["id"]
    stack.receiver.rekey("flaky", created.json()["secret"])
    stack.failing.add("flaky")
    [event_id] = stack.events("acme", "deal.created")
    path = f"/v1/workspaces/acme/subscriptions/{sub_id}/dead-letters"
    wait(lambda: stack.client("acme").get(path).json()["data"], 30, "a dead letter")
    stack.failing.discard("flaky")
    _open_sub(stack, sub_id)
    # Re-send the failed delivery from the log (filtered to failures) ...
    Select(find(driver, "#outcome")).select_by_value("dead_letter")

    def failed_row() -> bool:
        if driver.find_elements("css selector", 'tr.delivery[data-outcome="dead_letter"]'):
            return True
        find(driver, "#refresh-log").click()
        time.sleep(0.3)
        return False

    wait(failed_row, 30, "the failed delivery in the log")
    find(driver, "button.resend").click()
    got = stack.receiver.wait_for_success("flaky", 2, 30)  # the challenge, then the re-send
    assert got[-1].json["id"] == event_id and got[-1].verified
    # ... and its dead letter is marked: "Redrive all" does not send it a second time.
    find(driver, 'button[data-tab="dead"]').click()

    def marked() -> bool:
        find(driver, 'button[data-tab="dead"]').click()
        return find(driver, "td.redriven").text == "yes"

    wait(marked, 15, "marked as sent again")
    row = find(driver, "tr.dead-letter")
    assert row.get_attribute("data-event") == event_id
    arrived = len(stack.receiver.received("flaky"))
    find(driver, "#redrive").click()
    assert "Nothing to send" in find(driver, ".redriven-count").text
    time.sleep(1)
    assert len(stack.receiver.received("flaky")) == arrived
    ids = [r.headers["webhook-id"] for r in stack.receiver.received("flaky")[1:]]
    assert len(set(ids)) == 1 and len(ids) == 4  # three failed attempts and one re-send
    # The re-sent delivery's attempts are numbered on: 1 to 4, no second "Attempt 1".
    find(driver, 'button[data-tab="log"]').click()
    Select(find(driver, "#outcome")).select_by_value("")

    def four_attempts() -> list[str]:
        rows = driver.find_elements("css selector", "tr.delivery")
        if not rows or rows[0].get_attribute("data-outcome") != "success":
            find(driver, "#refresh-log").click()
            time.sleep(0.5)
            return []
        if find(driver, "#auto-refresh").is_selected():  # the rows stay as they are
            find(driver, "#auto-refresh").click()
        rows[0].find_element("css selector", "button.details").click()
        wait(lambda: driver.find_elements("css selector", ".attempt-head"), 15, "attempts")
        heads = [e.text for e in driver.find_elements("css selector", ".attempt-head strong")]
        if len(heads) < 4:
            rows[0].find_element("css selector", "button.details").click()
            return []
        return heads

    heads = wait(four_attempts, 30, "four numbered attempts")
    assert heads == ["Attempt 1", "Attempt 2", "Attempt 3", "Attempt 4"]
    screenshot(driver, "portal-dead-letters")
    stack.no_console_errors()


def test_an_auto_disabled_endpoint_goes_back_to_active_from_the_list(stack: Stack) -> None:
    driver = stack.driver
    stack.failing.add("gone")
    url = stack.endpoint("gone", status=410)
    created = stack.client("acme").post(
        "/v1/workspaces/acme/subscriptions",
        json={"url": url, "events": ["incident.*"], "name": "Gone"},
    )
    sub_id = created.json()["id"]
    stack.events("acme", "incident.raised")
    wait(lambda: stack.sub("acme", sub_id)["status"] == "TOO_MANY_ERRORS", 30, "auto-disable")
    stack.failing.discard("gone")
    driver.get(f"{stack.api.url}/portal/#/")
    row = find(driver, f'tr.sub[data-id="{sub_id}"]')
    assert "TOO MANY ERRORS" in row.text
    assert row.find_element("css selector", ".reason").text
    driver.set_window_size(375, 800)
    screenshot(driver, "portal-list-375")
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 375
    driver.set_window_size(1280, 900)
    row.find_element("css selector", "button.enable").click()
    wait(lambda: stack.sub("acme", sub_id)["status"] == "ACTIVE", 15, "enabled")
    stack.no_console_errors()


def test_a_workspace_link_never_shows_another_workspace(stack: Stack) -> None:
    driver = stack.driver
    theirs = stack.client("globex").post(
        "/v1/workspaces/globex/subscriptions",
        json={"url": stack.endpoint("globex"), "events": ["*"], "name": "Globex secret hook"},
    )
    assert theirs.status_code == 201, theirs.text
    stack.open("acme")
    find(driver, "tr.sub")
    names = " ".join(texts(driver, "tr.sub"))
    assert "CRM sync" in names and "Globex" not in names
    driver.get(f"{stack.api.url}/portal/#/subs/{theirs.json()['id']}")
    find(driver, ".error")
    assert "Globex" not in driver.find_element("css selector", "main").text
    stack.open("globex")
    names = " ".join(texts(driver, "tr.sub"))
    assert "Globex secret hook" in names and "CRM sync" not in names
    console_errors(driver)  # the 404 above is expected


def test_forged_expired_and_reused_links_show_nothing(stack: Stack) -> None:
    driver = stack.driver
    bearer = stack.client("acme")
    used = new_link(bearer, "acme")
    driver.get(used)
    find(driver, "tr.sub")
    expired = new_link(bearer, "acme", ttl="1s")
    payload, mac = used.split("#", 1)[1].split(".")
    forged = f"{stack.api.url}/portal/#{payload}.{mac[::-1]}"
    time.sleep(1.2)
    for name, url in (("reused", used), ("expired", expired), ("forged", forged)):
        driver.delete_all_cookies()
        driver.get("about:blank")
        driver.get(url)
        message = find(driver, "main h1").text
        assert message == "This link cannot be opened", (name, message)
        assert not driver.find_elements("css selector", "tr.sub"), name
        assert "CRM sync" not in driver.find_element("css selector", "main").text
        # Nothing else is reachable either: the nav stays hidden, the API refuses.
        assert not find(driver, "header").find_element("css selector", "#nav").is_displayed()
    screenshot(driver, "portal-bad-link")
    errors = console_errors(driver, allowed=("401",))
    assert not errors, errors
