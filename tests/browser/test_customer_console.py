"""The console's Customer and Decision views in Chromium, against the local stack's public API."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from cli.console_server import ConsoleServer
from infra.local.stack import LocalGovernor
from tests.browser.conftest import call, decide, event, seed_customer
from tests.zones import zone_where_it_is


@pytest.fixture(scope="module")
def seeded(stack: LocalGovernor) -> list[dict[str, Any]]:
    return seed_customer(stack, "cust-console-1")


def dead_api_url() -> str:
    """An API address nobody answers at: the console's server answers 502 for every API call."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def marketing_ops(stack: LocalGovernor) -> Iterator[ConsoleServer]:
    with ConsoleServer(stack.url, credentials=stack.credentials["marketing-ops"]) as server:
        yield server


def test_search_timeline_caps_and_why(page: Any, stack: LocalGovernor, seeded: list[dict[str, Any]]) -> None:
    # Given a customer with a survey, a survey suppressed by the 30-day cap and a callback
    survey, suppressed, callback = seeded
    assert (survey["action"], suppressed["reasons"][0], callback["action"]) == (
        "survey",
        "SURVEY_CAP_REACHED",
        "callback",
    )
    page.goto(f"{stack.url}/")
    # When the admin types the id into the focused search box and presses Enter
    expect(page.get_by_label("Customer id")).to_be_focused()
    page.keyboard.type("cust-console-1")
    page.keyboard.press("Enter")
    # Then the timeline shows each decision with its action, state and deciding reason
    expect(page).to_have_url(re.compile(r"#/customer/cust-console-1$"))
    entries = page.locator(".timeline-list > li")
    expect(entries).to_have_count(3)
    expect(page.locator(f'[data-decision="{suppressed["decision_id"]}"]')).to_contain_text("SURVEY_CAP_REACHED")
    expect(page.locator(f'[data-decision="{callback["decision_id"]}"]')).to_contain_text("CALLBACK_UNRESOLVED")
    # and the send time in the customer's zone, with UTC on hover
    sent = page.locator(f'[data-decision="{survey["decision_id"]}"] time').last
    expect(sent).to_contain_text(f"({zone_where_it_is(13)})")
    expect(sent).to_have_attribute("title", re.compile(r"UTC$"))
    # and each cap window as a gauge
    expect(page.locator(".gauge").first).to_contain_text(re.compile(r"1 of 1 survey in 30 days, next eligible \d+ \w+"))
    expect(page.locator(".gauge meter")).to_have_count(3)
    # When the admin follows the suppressed decision's link
    page.locator(f'[data-decision="{suppressed["decision_id"]}"] a.why').click()
    # Then every rule is listed, the failed one with its figures, and the policy version links to it
    expect(page.get_by_role("heading", level=1)).to_contain_text("Why none?")
    failed = page.locator('tr.failed[data-rule="survey_cap_30_days"]')
    expect(failed).to_contain_text("failed")
    expect(failed.locator(".figures")).to_contain_text("cap")
    assert page.locator("table.rules tbody tr").count() == len(suppressed["explanation"])
    expect(page.locator("a.policy-link")).to_have_attribute("href", f"#/policy?version={suppressed['policy_version']}")


def night_zone() -> str:
    """A fixed-offset zone where it is now about 02:00: inside the default quiet hours (20:00-09:00)."""
    offset = (2 - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 12 else offset
    return f"Etc/GMT{-offset:+d}" if offset else "UTC"  # Etc/GMT-9 is UTC+9


def test_why_surveyed_and_nobody_called_back_at_a_glance(page: Any, stack: LocalGovernor) -> None:
    # Given a customer at night in their zone: a survey held for its send time, then an unresolved
    # interaction whose callback waits for the end of the quiet hours and cancels the held survey
    customer = "cust-console-night"
    zone = night_zone()
    survey = decide(stack, event(customer, 1, hours_ago=0.2, customer_timezone=zone))
    callback = decide(stack, event(customer, 2, hours_ago=0.1, customer_timezone=zone, outcome="unresolved"))
    assert (survey["action"], callback["action"], callback["state"]) == ("survey", "callback", "pending")
    assert callback["supersedes"] == [survey["decision_id"]]
    # When the admin opens the customer
    page.goto(f"{stack.url}/#/customer/{customer}")
    # Then the pending callback is listed with its send time in the customer's zone
    pending = page.locator(".pending li")
    expect(pending).to_have_count(1)
    expect(pending).to_contain_text("callback goes out")
    expect(pending.locator("time")).to_contain_text(f"09:00 ({zone})")
    expect(pending.locator("time")).to_have_attribute("title", re.compile(r"your time \(Europe/Paris\) · .* UTC$"))
    # and the timeline shows the survey cancelled, when and why, in words and as the code
    cancelled = page.locator(f'[data-decision="{survey["decision_id"]}"] .cancelled')
    expect(cancelled).to_contain_text("a newer interaction's decision replaced it")
    expect(cancelled).to_contain_text("SUPERSEDED_BY_NEWER_INTERACTION")
    expect(cancelled.locator("time")).to_have_attribute("title", re.compile(r"UTC$"))


def test_unknown_customer_is_never_seen(page: Any, stack: LocalGovernor) -> None:
    # Given an id the governor has never decided for
    # When the admin opens it
    page.goto(f"{stack.url}/#/customer/cust-nobody-{quote('x')}")
    # Then the page says so instead of showing empty tables
    expect(page.locator(".never-seen")).to_contain_text("Never seen")
    expect(page.locator(".timeline-list")).to_have_count(0)


def test_conflicting_opt_out_is_reported_and_reapplied(page: Any, stack: LocalGovernor) -> None:
    # Given a customer page loaded with no opt-out
    customer = "cust-console-optout"
    seed_customer(stack, customer)
    page.goto(f"{stack.url}/#/customer/{customer}")
    surveys = page.get_by_label("Surveys", exact=True)
    expect(surveys).not_to_be_checked()
    page.wait_for_load_state("networkidle")  # every read of the page answered: its baseline is set
    puts: list[tuple[int, str | None]] = []
    page.on(
        "response",
        lambda r: (
            puts.append((r.status, r.request.headers.get("if-match")))
            if r.request.method == "PUT" and r.url.endswith("/preferences")
            else None
        ),
    )
    # and meanwhile someone else records an opt-out of callbacks through the API
    status, _, _ = call("PUT", f"{stack.url}/customers/{customer}/preferences", {"callback": True, "source": "ivr"})
    assert status == 200
    # When the admin switches on the opt-out of surveys (one click: `check()` would click again when the
    # page redraws the switches with the state it found, and so re-apply the change itself)
    surveys.click()
    # Then the conflict is reported with the current state, and the admin's change was not sent
    conflict = page.locator(".conflict")
    expect(conflict).to_contain_text("Changed by someone else")
    expect(conflict).to_contain_text("callback (ivr)")
    _, stored, _ = call("GET", f"{stack.url}/customers/{customer}/preferences")
    assert [o["kind"] for o in stored["opt_outs"]] == ["callback"]
    expect(page.get_by_label("Callbacks", exact=True)).to_be_checked()
    # And it was the API that refused it: the page sent the ETag it had read, and got 412
    assert [status for status, _ in puts] == [412] and puts[0][1]
    # When the admin re-applies their change
    conflict.get_by_role("button", name=re.compile("Re-apply")).click()
    # Then both opt-outs are stored, nothing lost
    expect(page.locator(".optout-status .ok")).to_contain_text("Recorded the opt-out of survey")
    _, stored, _ = call("GET", f"{stack.url}/customers/{customer}/preferences")
    assert sorted(o["kind"] for o in stored["opt_outs"]) == ["callback", "survey"]
    expect(page.get_by_label("Surveys", exact=True)).to_be_checked()
    # And the re-applied change was sent with the ETag of the state the page showed
    assert [status for status, _ in puts] == [412, 200] and puts[1][1] not in (None, puts[0][1])


def test_opt_out_toggle_without_conflict(page: Any, stack: LocalGovernor) -> None:
    # Given a customer page loaded with no opt-out
    customer = "cust-console-toggle"
    page.goto(f"{stack.url}/#/customer/{customer}")
    # When the admin switches on "All follow-ups" with a source, then off again
    page.get_by_label("Where the wish came from").fill("support call 123")
    page.get_by_label("All follow-ups").check()
    expect(page.locator(".optout-status .ok")).to_contain_text("Recorded the opt-out of all")
    _, stored, _ = call("GET", f"{stack.url}/customers/{customer}/preferences")
    assert stored["opt_outs"][0]["kind"] == "all"
    assert stored["opt_outs"][0]["source"] == "support call 123"
    page.get_by_label("All follow-ups").uncheck()
    # Then the API holds the last change
    expect(page.locator(".optout-status .ok")).to_contain_text("Lifted the opt-out of all")
    _, stored, _ = call("GET", f"{stack.url}/customers/{customer}/preferences")
    assert stored["opt_outs"] == []


def test_unknown_decision_shows_the_api_error(page: Any, stack: LocalGovernor) -> None:
    # Given a decision id that does not exist
    # When the admin opens it
    page.goto(f"{stack.url}/#/decision/dcn_doesnotexist")
    # Then the API's message and status are shown
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("no decision dcn_doesnotexist")
    expect(alert).to_contain_text("HTTP 404")


def test_a_failing_api_shows_an_error_and_the_page_keeps_working(page: Any) -> None:
    # Given a console whose API does not answer (the console server answers 502)
    with ConsoleServer(dead_api_url()) as server:
        # When the admin looks a customer up
        page.goto(f"{server.url}/#/customer/cust-console-1")
        # Then the error says what failed, and the search still works
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("Could not load the customer")
        expect(alert).to_contain_text("HTTP 502")
        page.get_by_label("Customer id").fill("cust-other")
        page.get_by_label("Customer id").press("Enter")
        expect(page).to_have_url(re.compile(r"#/customer/cust-other$"))
        expect(page.get_by_role("alert")).to_contain_text("HTTP 502")
        # and the Decision view fails the same way, with a way to try again
        page.goto(f"{server.url}/#/decision/dcn_anything")
        expect(page.get_by_role("alert")).to_contain_text("Could not load the decision")
        expect(page.get_by_role("alert")).to_contain_text("HTTP 502")
        expect(page.get_by_role("button", name="Try again")).to_be_visible()


def test_a_bad_customer_id_shows_the_fields(page: Any, stack: LocalGovernor) -> None:
    # Given an id that looks like an e-mail address (refused by the API)
    # When the admin searches for it
    page.goto(f"{stack.url}/#/customer/{quote('someone@example.com')}")
    # Then the API's message and the field to change are shown
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("HTTP 400")
    expect(alert.locator(".error-fields li").first).to_be_visible()


def test_marketing_ops_may_not_read_customers(
    page: Any, marketing_ops: ConsoleServer, seeded: list[dict[str, Any]]
) -> None:
    # Given the console signed with the marketing-ops role's keys (no per-customer routes)
    # When they open a customer and a decision
    page.goto(f"{marketing_ops.url}/#/customer/cust-console-1")
    # Then each says it is not permitted, and the navigation still works
    expect(page.get_by_role("alert")).to_contain_text("Not permitted with these credentials")
    page.goto(f"{marketing_ops.url}/#/decision/{seeded[0]['decision_id']}")
    expect(page.get_by_role("alert")).to_contain_text("Not permitted with these credentials")
    page.get_by_role("link", name="Policy").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Current: version \d+"))).to_be_visible()


def test_readable_on_a_phone(browser: Any, stack: LocalGovernor, seeded: list[dict[str, Any]]) -> None:
    # Given a 390 px wide window
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-GB", timezone_id="Europe/Paris")
    page = context.new_page()
    try:
        # When the customer and a decision are shown
        for route in ("#/customer/cust-console-1", f"#/decision/{seeded[1]['decision_id']}", "#/policy", "#/stats"):
            page.goto(f"{stack.url}/{route}")
            expect(page.locator(".loading")).to_have_count(0)
            # Then nothing is wider than the screen
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        context.close()
