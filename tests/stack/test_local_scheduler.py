"""The local stack fires held follow-ups' one-time schedules (moto stores them, never fires them),
through the template's own release function, under both clocks; POST /local/advance; the
lifecycle through the admin API and the CLI; a replay of generated episodic traffic ends with
nothing pending."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from cli import main as cli_main
from infra.local.stack import LocalGovernor, running
from shared.domain.decision import decision_id_for
from tests.conftest import detail
from tests.stack.test_local_stack import call

pytestmark = pytest.mark.server

T = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # midday UTC: no quiet hours for a UTC customer


@pytest.fixture(scope="module")
def event_stack() -> Iterator[LocalGovernor]:
    """A stack on the event clock: time is the traffic's own."""
    saved = dict(os.environ)
    with running(port=0, log_to=None, clock="event") as local:
        yield local
    os.environ.clear()
    os.environ.update(saved)


def survey_event(customer: str, n: int, closed_at: datetime, **overrides: Any) -> dict[str, Any]:
    return detail(
        event_id=f"{customer}-e{n}",
        interaction_id=f"{customer}-i{n}",
        customer_id=customer,
        closed_at=closed_at.isoformat(),
        **overrides,
    )


def post_and_drain(stack: LocalGovernor, *events: dict[str, Any]) -> None:
    status, answer = call(stack, "POST", "/events", {"events": list(events)})
    assert (status, answer["accepted"]) == (202, len(events)), answer
    assert stack.wait_drained(timeout=60)


def decision(stack: LocalGovernor, customer: str, n: int) -> dict[str, Any]:
    status, body = call(stack, "GET", f"/decisions/{decision_id_for(customer, f'{customer}-e{n}')}")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def schedules(stack: LocalGovernor) -> set[str]:
    client = boto3.client("scheduler", endpoint_url=stack.moto_endpoint, region_name="us-east-1")
    return {s["Name"] for s in client.list_schedules()["Schedules"]}


def test_advance_fires_a_held_survey_once_through_the_release_function(event_stack: LocalGovernor) -> None:
    # Given a resolved call closed at T: its survey is held until the survey delay has passed
    post_and_drain(event_stack, survey_event("ls-adv", 1, T))
    held = decision(event_stack, "ls-adv", 1)
    assert (held["action"], held["state"]) == ("survey", "pending")
    assert f"fu-{held['decision_id']}" in schedules(event_stack)
    # When the local clock is advanced to just before its send time, then past it
    assert call(event_stack, "POST", "/local/advance", {"to": "2026-11-23T12:30:00Z"}) == (
        200,
        {"released": 0, "cancelled": 0, "failed": 0},
    )
    status, answer = call(event_stack, "POST", "/local/advance", {"to": (T + timedelta(hours=3)).isoformat()})
    # Then it was released exactly then, as of its own send time, and its schedule is gone
    assert (status, answer) == (200, {"released": 1, "cancelled": 0, "failed": 0})
    released = decision(event_stack, "ls-adv", 1)
    assert released["state"] == "released"
    assert released["state_changed_at"][:16] == released["send_at"][:16]
    assert f"fu-{held['decision_id']}" not in schedules(event_stack)
    # And advancing again changes nothing (no second release)
    assert call(event_stack, "POST", "/local/advance", {"to": (T + timedelta(hours=4)).isoformat()})[1] == {
        "released": 0,
        "cancelled": 0,
        "failed": 0,
    }


def test_under_the_event_clock_a_due_schedule_runs_before_a_later_event_is_decided(
    event_stack: LocalGovernor,
) -> None:
    # Given a held survey (send time T + 2 h) and, in a separate post, the same customer's next
    # interaction closing at T + 5 h, after that send time
    post_and_drain(event_stack, survey_event("ls-order", 1, T))
    first = decision(event_stack, "ls-order", 1)
    assert first["state"] == "pending"
    # When the later interaction is processed (no /local/advance)
    post_and_drain(event_stack, survey_event("ls-order", 2, T + timedelta(hours=5), outcome="unresolved"))
    # Then the survey's schedule ran first, in time order: it went out at its send time, and the
    # newer interaction did not supersede it (it had already been sent)
    after = decision(event_stack, "ls-order", 1)
    assert (after["state"], after["state_reason"]) == ("released", None)
    assert after["state_changed_at"][:16] == first["send_at"][:16]
    second = decision(event_stack, "ls-order", 2)
    assert first["decision_id"] not in second["supersedes"]


def test_a_newer_interaction_before_the_send_time_cancels_the_held_survey(event_stack: LocalGovernor) -> None:
    # Given a held survey and the customer's next contact 30 minutes later, before its send time
    post_and_drain(event_stack, survey_event("ls-sup", 1, T))
    post_and_drain(event_stack, survey_event("ls-sup", 2, T + timedelta(minutes=30)))
    # When time passes both send times
    status, answer = call(event_stack, "POST", "/local/advance", {"to": (T + timedelta(hours=6)).isoformat()})
    # Then the first was cancelled as superseded when the newer one was decided (a stray firing of
    # its schedule would change nothing), and the newer interaction's own survey was released
    assert (status, answer) == (200, {"released": 1, "cancelled": 0, "failed": 0})
    first, second = decision(event_stack, "ls-sup", 1), decision(event_stack, "ls-sup", 2)
    assert (first["state"], first["state_reason"]) == ("cancelled", "SUPERSEDED_BY_NEWER_INTERACTION")
    assert second["supersedes"] == [first["decision_id"]]
    assert second["state"] == "released"
    # And the day's stats count the cancellation by reason and the release
    status, stats = call(event_stack, "GET", "/stats?from=2026-11-23&to=2026-11-23")
    assert status == 200
    assert stats["total"]["cancelled_by_reason"].get("SUPERSEDED_BY_NEWER_INTERACTION", 0) >= 1
    assert stats["total"]["released"] >= 1
    # And the state filter finds each where it is
    by_state = {
        state: {
            d["decision_id"]
            for d in call(event_stack, "GET", f"/decisions?customer_id=ls-sup&state={state}")[1]["items"]
        }
        for state in ("pending", "released", "cancelled", "suppressed")
    }
    assert by_state == {
        "pending": set(),
        "released": {second["decision_id"]},
        "cancelled": {first["decision_id"]},
        "suppressed": set(),
    }


def test_advance_is_refused_without_a_time(event_stack: LocalGovernor) -> None:
    status, error = call(event_stack, "POST", "/local/advance", {"to": "tomorrow"})
    assert (status, error["code"], [f["field"] for f in error["fields"]]) == (400, "INVALID_INPUT", ["to"])


def test_cli_shows_the_lifecycle_in_decisions_why_and_customer(
    event_stack: LocalGovernor, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a held survey
    post_and_drain(event_stack, survey_event("ls-cli", 1, T + timedelta(days=1)))
    held = decision(event_stack, "ls-cli", 1)
    url = ["--url", event_stack.url]
    # When an admin lists the customer's pending decisions, asks why, and looks at the customer
    assert cli_main.main(["decisions", "--customer", "ls-cli", "--state", "pending", *url]) == 0
    listed, counted = capsys.readouterr()  # data on stdout, the count on stderr
    assert cli_main.main(["why", held["decision_id"], *url]) == 0
    why = capsys.readouterr().out
    assert cli_main.main(["customer", "ls-cli", *url]) == 0
    customer = capsys.readouterr().out
    # Then each shows it is held, until when
    assert held["decision_id"] in listed and "pending" in listed and "1 decision(s)" in counted
    assert "state: pending" in why and "held until its send time" in why
    assert held["decision_id"] in customer and held["send_at"][:16] in customer
    assert "surveys: 0 answered" in customer
    # When it is released and the customer answers it (an outcome posted like the senders do)
    assert call(event_stack, "POST", "/local/advance", {"to": "2026-11-24T18:00:00Z"})[1]["released"] == 1
    answered = {
        "outcome_id": "ls-cli-o1",
        "decision_id": held["decision_id"],
        "type": "survey_responded",
        "occurred_at": "2026-11-24T19:00:00Z",
        "score": 8,
    }
    status, accepted = call(event_stack, "POST", "/outcomes", answered)
    assert (status, accepted["accepted"]) == (202, 1), accepted
    assert event_stack.wait_drained(timeout=60)
    # Then why says it was released, and the customer shows the response and the cooldown it started
    assert cli_main.main(["why", held["decision_id"], *url]) == 0
    assert "state: released" in capsys.readouterr().out
    assert cli_main.main(["customer", "ls-cli", *url]) == 0
    customer = capsys.readouterr().out
    assert "no follow-up pending" in customer
    assert "surveys: 1 answered (last 2026-11-24T19:00)" in customer
    assert "no survey until 2027-02-22T19:00: cooldown after a response" in customer


def test_replay_of_generated_episodic_traffic_ends_with_nothing_pending(
    event_stack: LocalGovernor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the first two days of generated episodic traffic (60 events: 13 customers contact again
    # within hours or days; replayed, 39 follow-ups are released and one is superseded)
    from infra.sample_events import generate

    source = tmp_path / "episodic.ndjson"
    source.write_text("\n".join(json.dumps(d) for d in generate()[:60]))
    # When it is replayed on the event clock
    assert cli_main.main(["replay", str(source), "--url", event_stack.url]) == 0
    printed = capsys.readouterr().out
    # Then every follow-up ended released or cancelled, and the summary counts them by reason
    line = next(x for x in printed.splitlines() if x.startswith("follow-ups:"))
    assert " 0 pending" in line, printed
    released, cancelled = int(line.split()[1]), int(line.split()[3])
    assert released > 0 and cancelled > 0, printed
    assert "cancelled SUPERSEDED_BY_NEWER_INTERACTION" in printed
