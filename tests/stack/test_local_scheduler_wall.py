"""Under the wall clock the local stack fires a held follow-up's schedule when it falls due, through
the release function; /local/advance is refused (time is not the traffic's). A module of its own:
one process runs one local stack at a time (the stack sets the process's AWS endpoint and clock)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from infra.local.stack import LocalGovernor
from tests.stack.test_local_scheduler import decision, post_and_drain, schedules, survey_event
from tests.stack.test_local_stack import call
from tests.zones import zone_where_it_is

pytestmark = pytest.mark.server


def test_advance_is_refused_under_the_wall_clock(stack: LocalGovernor) -> None:
    status, error = call(stack, "POST", "/local/advance", {"to": "2026-11-23T12:00:00Z"})
    assert (status, error["code"]) == (409, "WALL_CLOCK")


def test_under_the_wall_clock_the_stack_fires_a_schedule_when_it_falls_due(stack: LocalGovernor) -> None:
    # Given a resolved call whose survey delay ends three seconds from now, for a customer for
    # whom it is midday (no quiet hours)
    now = datetime.now(UTC)
    zone = zone_where_it_is(12, now)
    closed = now - timedelta(minutes=120) + timedelta(seconds=3)
    post_and_drain(stack, survey_event("ls-wall", 1, closed, customer_timezone=zone))
    held = decision(stack, "ls-wall", 1)
    assert held["state"] == "pending", held
    # When nothing else happens but time passing
    deadline = time.monotonic() + 20
    while decision(stack, "ls-wall", 1)["state"] == "pending" and time.monotonic() < deadline:
        time.sleep(0.5)
    # Then the background scheduler released it through the release function, at its send time
    released = decision(stack, "ls-wall", 1)
    assert released["state"] == "released"
    assert datetime.fromisoformat(released["state_changed_at"]) >= datetime.fromisoformat(held["send_at"])
    assert f"fu-{held['decision_id']}" not in schedules(stack)
