"""Real-browser tests of the console: Playwright driving Debian's Chromium (never a downloaded
browser) against the local stack, in this process. One stack and one browser per module."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from infra.local.stack import LocalGovernor
from tests.cli.conftest import local_stack
from tests.zones import zone_where_it_is

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL = "sudo apt-get install -y chromium"
# A function's first call imports it in this process (a cold start): on a busy 2-core machine that
# can take seconds, so waits for the page are generous; none of them times the product.
WAIT_MS = 20_000
expect.set_options(timeout=WAIT_MS)


def launch(playwright: Any) -> Any:
    if not CHROMIUM.exists():
        # Never skipped: the browser suite is part of `make test` (make browser installs it as root).
        pytest.fail(f"{CHROMIUM} is missing: run `{INSTALL}` (or `make browser` as root)", pytrace=False)
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalGovernor]:
    """One stack per module on free ports, its state file in a temporary folder (never the user's)."""
    yield from local_stack(tmp_path_factory, "wall")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh context per test (nothing carried over), in a fixed zone and locale so times read
    the same everywhere; console errors fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB", timezone_id="Europe/Paris")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def call(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    """One request to the public API, as any client would send it."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"content-type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read() or b"null"), answer.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), error.headers


def event(customer: str, n: int, *, hours_ago: float, **fields: Any) -> dict[str, Any]:
    closed = datetime.now(UTC) - timedelta(hours=hours_ago)
    detail = {
        "event_id": f"evt-{customer}-{n}",
        "interaction_id": f"int-{customer}-{n}",
        "customer_id": customer,
        "channel": "phone",
        "closed_at": closed.isoformat(),
        "outcome": "resolved",
        "customer_timezone": zone_where_it_is(13),
        "segment": "consumer",
    }
    detail.update(fields)
    return detail


def decide(stack: LocalGovernor, detail: dict[str, Any]) -> dict[str, Any]:
    """POST /decide: the decision once it is committed, through the same engine as the queue."""
    status, answer, _ = call("POST", f"{stack.url}/decide", detail)
    assert status == 200, answer
    return dict(answer)


def seed_customer(stack: LocalGovernor, customer: str) -> list[dict[str, Any]]:
    """A customer with a survey, a suppressed second survey (the 30-day cap) and a callback."""
    return [
        decide(stack, event(customer, 1, hours_ago=30)),
        decide(stack, event(customer, 2, hours_ago=20)),
        decide(stack, event(customer, 3, hours_ago=2, outcome="unresolved", channel="chat")),
    ]
