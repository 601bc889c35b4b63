"""The console's loading, empty and error states in every view, its keyboard use, and what it keeps
in the browser (nothing). Chromium against a local stack in which this module decides nothing, so
each view's empty state is real: a simulation finds no logged traffic, stats find no decision."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import expect

from cli.console_server import ConsoleServer
from infra.local.stack import LocalGovernor
from tests.browser.conftest import call


@pytest.fixture
def silent_api() -> Iterator[str]:
    """An API that takes the connection and never answers: every view stays in its loading state
    (a real socket, no mocked route; closing it at the end resets the waiting calls)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.mark.parametrize(
    ("route", "text"),
    [
        ("#/customer/cust-states-1", "Loading the customer"),
        ("#/decision/dcn_states1", "Loading the decision"),
        ("#/policy", "Loading the policy"),
        ("#/stats", "Loading the statistics"),
    ],
)
def test_each_view_says_it_is_loading(page: Any, silent_api: str, route: str, text: str) -> None:
    # Given a console whose API has not answered yet
    with ConsoleServer(silent_api) as server:
        # When a view is opened
        page.goto(f"{server.url}/{route}")
        # Then it says what it is waiting for, as a status a screen reader announces
        expect(page.locator("main").get_by_role("status")).to_have_text(f"{text}…")
        expect(page.get_by_role("alert")).to_have_count(0)


def test_each_view_has_an_empty_state(page: Any, stack: LocalGovernor) -> None:
    # Given a stack with nothing logged
    # When each view is opened with nothing to show
    page.goto(f"{stack.url}/#/customer")
    # Then the Customer view asks for an id
    expect(page.locator(".empty")).to_contain_text("Search for a customer")
    # and the Decision view says where decisions are opened from
    page.goto(f"{stack.url}/#/decision")
    expect(page.locator(".empty")).to_contain_text("Open a decision from a customer's timeline")
    # and the Stats view says the range holds nothing
    page.goto(f"{stack.url}/#/stats?from=2020-01-01&to=2020-01-07")
    expect(page.locator(".empty")).to_contain_text("No decision, release or cancellation from 2020-01-01 to 2020-01-07")
    expect(page.locator("figure.chart")).to_have_count(0)
    # and the Policy view's simulation says there was no traffic to replay, instead of zero bars
    page.goto(f"{stack.url}/#/policy")
    expect(page.locator(".validity .valid")).to_be_visible()
    page.get_by_label("Surveys enabled").uncheck()
    page.get_by_label("Days of log to replay").fill("2")
    page.get_by_role("button", name="Simulate").click()
    expect(page.locator(".sim-empty")).to_contain_text("No logged decision in the last 2 days")
    expect(page.locator(".sim-result figure")).to_have_count(0)


def test_an_unknown_policy_version_is_an_error_and_the_rest_works(page: Any, stack: LocalGovernor) -> None:
    # Given a link to a policy version that does not exist
    # When it is opened
    page.goto(f"{stack.url}/#/policy?version=999")
    # Then that panel shows the API's 404, and the current version and the editor still work
    expect(page.locator(".card.version").get_by_role("alert")).to_contain_text("policy version 999 does not exist")
    expect(page.get_by_role("heading", name=re.compile(r"^Current: version \d+"))).to_be_visible()
    expect(page.locator(".validity .valid")).to_be_visible()


def test_keyboard_skip_link_visible_focus_and_activation(page: Any, stack: LocalGovernor) -> None:
    # Given the Stats view, opened fresh
    page.goto(f"{stack.url}/#/stats?from=2020-01-01&to=2020-01-07")
    expect(page.locator(".empty")).to_be_visible()
    # When the operator presses Tab
    page.keyboard.press("Tab")
    # Then the first stop is the skip link, on screen and outlined
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0
    assert skip.evaluate("e => getComputedStyle(e).outlineStyle") == "solid"
    # and Enter moves focus past the navigation to the view
    page.keyboard.press("Enter")
    expect(page.locator("main#view")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("From (UTC day)")).to_be_focused()
    # When the operator tabs back to the navigation and presses Enter on "Policy"
    for _ in range(20):
        if page.evaluate("document.activeElement.textContent") == "Policy":
            break
        page.keyboard.press("Shift+Tab")
    focused = page.locator(":focus")
    expect(focused).to_have_text("Policy")
    assert focused.evaluate("e => getComputedStyle(e).outlineStyle") == "solid"
    page.keyboard.press("Enter")
    # Then the Policy view opens with focus on its heading
    expect(page.get_by_role("heading", level=1)).to_be_focused()
    expect(page.get_by_role("heading", level=1)).to_have_text("Policy")
    # When the operator presses Space on the editor's JSON button
    page.get_by_role("button", name="JSON", exact=True).focus()
    page.keyboard.press("Space")
    # Then the JSON view is shown
    expect(page.get_by_label(re.compile("The policy as JSON"))).to_be_visible()


def test_space_switches_an_opt_out(page: Any, stack: LocalGovernor) -> None:
    # Given a customer page, reached by typing the id and pressing Enter
    customer = "cust-states-keys"
    page.goto(f"{stack.url}/")
    page.keyboard.type(customer)
    page.keyboard.press("Enter")
    callbacks = page.get_by_label("Callbacks", exact=True)
    expect(callbacks).not_to_be_checked()
    # When the operator focuses the Callbacks switch and presses Space
    callbacks.focus()
    page.keyboard.press("Space")
    # Then the opt-out is recorded
    expect(page.locator(".optout-status .ok")).to_contain_text("Recorded the opt-out of callback")
    _, stored, _ = call("GET", f"{stack.url}/customers/{customer}/preferences")
    assert [o["kind"] for o in stored["opt_outs"]] == ["callback"]


def test_a_session_keeps_nothing_in_the_browser_and_no_customer_data_in_urls(
    browser: Any, stack: LocalGovernor
) -> None:
    # Given a fresh browser context
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB", timezone_id="Asia/Tokyo")
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        # When an operator uses every view: a customer and an opt-out, a decision, a policy edit, stats
        customer = "cust-states-session"
        page.goto(f"{stack.url}/")
        page.get_by_label("Customer id").fill(customer)
        page.get_by_label("Customer id").press("Enter")
        page.get_by_label("Where the wish came from").fill("support call 77")
        page.get_by_label("Surveys", exact=True).check()
        expect(page.locator(".optout-status .ok")).to_be_visible()
        page.goto(f"{stack.url}/#/decision/dcn_statesnone")
        expect(page.get_by_role("alert")).to_contain_text("HTTP 404")
        page.get_by_role("link", name="Policy").click()
        page.get_by_label("Survey delay after the close (minutes)").fill("77")
        expect(page.locator(".diff-box table")).to_contain_text("survey_delay_minutes")
        page.get_by_role("link", name="Stats").click()
        expect(page.locator(".loading")).to_have_count(0)
        # Then nothing is kept in the browser: no storage, no cookie, no database
        kept = page.evaluate(
            """async () => ({
                local: localStorage.length, session: sessionStorage.length, cookie: document.cookie,
                databases: (await indexedDB.databases()).length,
                caches: (await caches.keys()).length })"""
        )
        assert kept == {"local": 0, "session": 0, "cookie": "", "databases": 0, "caches": 0}
        assert context.cookies() == []
        # and no URL the page asked for carries what the operator typed, beyond the customer id
        assert requests
        for url in requests:
            assert "support" not in url and "77" not in urlsplit(url).query, url
        customer_urls = [url for url in requests if customer in url]
        assert customer_urls
        for url in customer_urls:
            parts = urlsplit(url)
            assert parts.path.startswith(f"/customers/{customer}/") or parts.query.startswith(
                f"customer_id={customer}&"
            )
    finally:
        context.close()


def test_a_refused_customer_id_is_shown_at_the_search_box(page: Any, stack: LocalGovernor) -> None:
    # Given an id that looks like an e-mail address (refused by the API)
    # When the admin searches for it
    page.goto(f"{stack.url}/#/customer/{quote('someone@example.com')}")
    # Then the search box is marked invalid and says why, below it
    search = page.get_by_label("Customer id")
    expect(search).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#customer-search-problem")).to_contain_text("looks like an e-mail address")
    expect(page.get_by_role("alert")).to_contain_text("HTTP 400")


def test_a_refused_range_is_shown_at_its_date(page: Any, stack: LocalGovernor) -> None:
    # Given a range whose start is after its end
    # When the stats are asked for
    today = datetime.now(UTC).date().isoformat()
    page.goto(f"{stack.url}/#/stats?from={today}&to=2020-01-01")
    # Then the "From" date is marked invalid with the API's reason, the "To" date is not
    expect(page.get_by_label("From (UTC day)")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#stats-from-problem")).to_have_text("is after to")
    expect(page.get_by_label("To (UTC day, inclusive)")).not_to_have_attribute("aria-invalid", "true")
