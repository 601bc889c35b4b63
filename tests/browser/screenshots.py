"""`make screenshots`: the console on a local stack with the sample replayed, at 1280x800, saved as
PNGs under docs/screenshots/ (the README's Console section shows them). Not a benchmark, not a test."""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

from playwright.sync_api import sync_playwright

from cli.replay import load, send
from infra.local.stack import running
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, INSTALL

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "screenshots"


def main() -> int:
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: run `{INSTALL}`", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with running(port=0, log_to=None, clock="event") as stack, open(os.devnull, "w") as quiet:
        report = send(stack.url, load(ROOT / "infra" / "sample-events.ndjson"), out=quiet)
        busiest = Counter(d["customer_id"] for d in report.decisions).most_common(1)[0][0]
        suppressed = next(d for d in report.decisions if d["customer_id"] == busiest and d["action"] == "none")
        days = sorted(d["decided_at"][:10] for d in report.decisions)
        shots = {
            "customer": f"#/customer/{busiest}",
            "decision": f"#/decision/{suppressed['decision_id']}",
            "policy": "#/policy",
            "stats": f"#/stats?from={days[0]}&to={days[-1]}",
        }
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="en-GB", timezone_id="Europe/Paris")
            for name, route in shots.items():
                page.goto(f"{stack.url}/{route}")
                page.wait_for_selector(".loading", state="detached")
                if name == "policy":
                    page.get_by_label("Surveys enabled").uncheck()
                    page.get_by_label("Days of log to replay").fill("30")
                    page.get_by_role("button", name="Simulate").click()
                    page.wait_for_selector(".sim-result figure", timeout=120_000)
                    page.locator(".sim-result").evaluate("node => node.scrollIntoView()")
                page.wait_for_selector(".loading", state="detached")
                page.screenshot(path=str(OUT / f"console-{name}.png"))
                print(f"wrote {OUT.relative_to(ROOT)}/console-{name}.png")
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
