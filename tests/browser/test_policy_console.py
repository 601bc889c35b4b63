"""The console's Policy and Stats views in Chromium, against the local stack's public API."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import expect

from cli.console_server import ConsoleServer
from infra.local.stack import LocalGovernor
from tests.browser.conftest import call, seed_customer
from tests.browser.test_customer_console import dead_api_url


@pytest.fixture(scope="module")
def seeded(stack: LocalGovernor) -> list[dict[str, Any]]:
    return seed_customer(stack, "cust-policy-1") + seed_customer(stack, "cust-policy-2")


def current(stack: LocalGovernor) -> tuple[int, dict[str, Any]]:
    status, body, headers = call("GET", f"{stack.url}/policy")
    assert status == 200
    return int(headers["ETag"].strip('"')), body


def open_policy(page: Any, url: str) -> None:
    page.goto(f"{url}/#/policy")
    expect(page.locator(".validity .valid")).to_be_visible()  # the loaded version validates


def test_edit_validate_diff_and_apply(page: Any, stack: LocalGovernor) -> None:
    # Given the policy view on the current version
    version, _ = current(stack)
    open_policy(page, stack.url)
    # When the operator changes the survey delay in the form
    delay = page.get_by_label("Survey delay after the close (minutes)")
    delay.fill("95")
    # Then it is validated as they type, and the diff against the current version shows the change
    diff = page.locator(".diff-box table")
    expect(diff).to_contain_text("survey_delay_minutes")
    expect(diff.locator(".after")).to_contain_text("95")
    # and the JSON view holds the same draft
    page.get_by_role("button", name="JSON").click()
    expect(page.get_by_label(re.compile("The policy as JSON"))).to_have_value(re.compile(r'"survey_delay_minutes": 95'))
    # When they apply it with a comment
    page.get_by_label("Comment").fill("shorter delay")
    page.get_by_role("button", name="Apply").click()
    # Then a new version is current, with the change, and it heads the history
    expect(page.get_by_role("status").filter(has_text="Applied")).to_contain_text(f"version {version + 1} is current")
    now, body = current(stack)
    assert now == version + 1
    assert body["policy"]["survey_delay_minutes"] == 95
    assert body["comment"] == "shorter delay"
    expect(page.locator(".history li").first).to_contain_text(f"Version {version + 1}")


def test_a_problem_is_shown_at_its_field(page: Any, stack: LocalGovernor) -> None:
    # Given the policy view
    version, _ = current(stack)
    open_policy(page, stack.url)
    # When a cap's maximum is made negative
    field = page.locator('[data-path="policy.caps.survey.0.max"]')
    field.get_by_label("At most").fill("-1")
    # Then the problem the API found is shown at that field, and the input is marked invalid
    expect(field.locator(".problem")).to_contain_text("greater than or equal to 0")
    expect(field.locator("input")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".validity")).to_contain_text("1 problem")
    # and a broken JSON document is reported at the JSON field, never sent
    page.get_by_role("button", name="JSON").click()
    page.get_by_label(re.compile("The policy as JSON")).fill("{ not json")
    expect(page.locator("#policy-json-problem")).to_contain_text("Not valid JSON")
    # When the operator applies anyway, nothing changes
    page.get_by_label("Comment").fill("broken")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".apply-status")).to_contain_text("Not applied")
    assert current(stack)[0] == version


def test_412_on_apply_is_explained_and_resolved(page: Any, stack: LocalGovernor) -> None:
    # Given the policy view loaded on version N
    version, body = current(stack)
    open_policy(page, stack.url)
    # and someone else applies version N+1 meanwhile
    theirs = {**body["policy"], "survey_freshness_hours": 36}
    status, _, _ = call(
        "PUT", f"{stack.url}/policy", {"policy": theirs, "comment": "theirs"}, {"If-Match": f'"{version}"'}
    )
    assert status == 200
    # When the operator applies their own change, based on N
    page.get_by_label("Gap before a survey since any follow-up (hours)").fill("48")
    page.get_by_label("Comment").fill("mine")
    page.get_by_role("button", name="Apply").click()
    # Then the 412 is explained: who applied which version, what it changed, what the draft would change
    conflict = page.locator(".conflict")
    expect(conflict).to_contain_text(f"Someone applied version {version + 1} while you edited")
    expect(conflict).to_contain_text("survey_freshness_hours")
    expect(conflict).to_contain_text("min_gap_hours_before_survey")
    assert current(stack)[0] == version + 1
    # When they re-apply their draft onto the new version
    conflict.get_by_role("button", name=f"Re-apply my draft onto version {version + 1}").click()
    # Then their change is applied on top of the other one: both are in the current version
    expect(page.get_by_role("status").filter(has_text="Applied")).to_contain_text(f"version {version + 2} is current")
    now, body = current(stack)
    assert now == version + 2
    assert body["policy"]["min_gap_hours_before_survey"] == 48
    assert body["based_on"] == version + 1


def test_simulate_charts_and_sample_customers(page: Any, stack: LocalGovernor, seeded: list[dict[str, Any]]) -> None:
    # Given logged decisions and a candidate that never surveys
    open_policy(page, stack.url)
    page.get_by_label("Surveys enabled").uncheck()
    expect(page.locator(".diff-box")).to_contain_text("enabled.survey")
    # When the operator simulates it on the last day of log
    page.get_by_label("Days of log to replay").fill("1")
    page.get_by_role("button", name="Simulate").click()
    # Then current and candidate are drawn per action and reason, and the customers treated
    # differently link to their Customer view
    result = page.locator(".sim-result")
    expect(result.locator("figure svg rect").first).to_be_visible(timeout=30_000)
    expect(result.locator("figcaption").first).to_contain_text("current vs candidate")
    link = result.locator(".sample a", has_text="cust-policy-1")
    expect(link).to_have_attribute("href", "#/customer/cust-policy-1")
    link.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Customer cust-policy-1")


def test_marketing_ops_simulates_without_customer_links(
    page: Any, stack: LocalGovernor, seeded: list[dict[str, Any]]
) -> None:
    # Given the console signed with the marketing-ops role's keys
    with ConsoleServer(stack.url, credentials=stack.credentials["marketing-ops"]) as server:
        open_policy(page, server.url)
        page.get_by_label("Surveys enabled").uncheck()
        page.get_by_label("Days of log to replay").fill("1")
        # When they simulate
        page.get_by_role("button", name="Simulate").click()
        # Then the sample customers are listed without links (they may not read customers)
        result = page.locator(".sim-result")
        expect(result.locator(".sample li").first).to_be_visible(timeout=30_000)
        expect(result.locator(".sample a")).to_have_count(0)
        expect(result).to_contain_text("not permitted to read customers")


def test_rollback_from_the_history(page: Any, stack: LocalGovernor) -> None:
    # Given at least one version after the built-in one
    version, body = current(stack)
    status, _, _ = call(
        "PUT",
        f"{stack.url}/policy",
        {"policy": {**body["policy"], "survey_sample_rate": 0.5}, "comment": "half"},
        {"If-Match": f'"{version}"'},
    )
    assert status == 200
    # When the operator opens version 0 from the history and rolls back to it
    page.goto(f"{stack.url}/#/policy")
    page.locator(".history").get_by_role("link", name="Version 0", exact=True).click()
    expect(page.get_by_role("heading", name="Version 0", exact=True)).to_be_visible()
    page.get_by_label("Roll back to version 0, because").fill("back to the default")
    page.get_by_role("button", name="Roll back to version 0").click()
    # Then a new version holding version 0's policy is current
    expect(page.get_by_role("status").filter(has_text="Rolled back")).to_contain_text(f"version {version + 2}")
    now, body = current(stack)
    assert now == version + 2
    assert body["kind"] == "rollback"
    assert body["policy"]["survey_sample_rate"] == 1.0


def test_stats_charts_and_export(page: Any, stack: LocalGovernor, seeded: list[dict[str, Any]]) -> None:
    # Given today's decisions
    today = datetime.now(UTC).date().isoformat()
    # When the operator opens the stats of today
    page.goto(f"{stack.url}/#/stats?from={today}&to={today}")
    # Then the totals and charts are drawn
    expect(page.locator(".totals")).to_contain_text("Suppression rate")
    expect(page.locator("figure.chart")).to_have_count(5)
    expect(page.locator("figure.chart svg rect").first).to_be_visible()
    # and the per-day chart by deciding reason names the seeded reasons
    by_reason = page.locator("figure.chart", has_text="per day by deciding reason")
    expect(by_reason.locator(".legend")).to_contain_text("SURVEY_CAP_REACHED")
    # When they download the range as CSV
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    text = download.value.path().read_text()
    # Then the file holds the header and every decision of the range
    lines = text.strip().splitlines()
    assert lines[0].startswith("decision_id,")
    assert {s["decision_id"] for s in seeded} <= {line.split(",")[0] for line in lines[1:]}
    # and as NDJSON, one decision object a line
    with page.expect_download() as download:
        page.get_by_role("link", name="Download NDJSON").click()
    rows = [json.loads(line) for line in download.value.path().read_text().splitlines()]
    assert {s["decision_id"] for s in seeded} <= {row["decision_id"] for row in rows}


def test_stats_error_shows_the_field(page: Any, stack: LocalGovernor) -> None:
    # Given a range whose start is after its end
    # When the stats are asked for
    page.goto(f"{stack.url}/#/stats?from=2026-11-20&to=2026-11-10")
    # Then the API's message and the field are shown
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("from is after to")
    expect(alert.locator(".error-fields")).to_contain_text("from")


def test_a_failing_api_leaves_policy_and_stats_usable(page: Any) -> None:
    # Given a console whose API does not answer
    with ConsoleServer(dead_api_url()) as server:
        # When the policy and stats views are opened
        page.goto(f"{server.url}/#/policy")
        # Then each shows the failure, with a way to try again
        expect(page.get_by_role("alert")).to_contain_text("Could not load the policy")
        expect(page.get_by_role("button", name="Try again")).to_be_visible()
        page.get_by_role("link", name="Stats").click()
        expect(page.get_by_role("alert")).to_contain_text("Could not load the statistics")
        expect(page.get_by_role("alert")).to_contain_text("HTTP 502")
        # and the range form still works (the next try fails the same way, and says so)
        page.get_by_label("From (UTC day)").fill("2026-11-01")
        page.get_by_role("button", name="Show").click()
        expect(page).to_have_url(re.compile(r"#/stats\?from=2026-11-01&"))
        expect(page.get_by_role("alert")).to_contain_text("Could not load the statistics")
