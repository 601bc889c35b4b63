"""The policy simulation runs the lifecycle: held follow-ups are superseded or re-checked at their
send time, and logged outcomes (a survey response) shape later decisions, as they did live."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared import wiring
from shared.adapters.clock import FixedClock
from shared.domain.events import InteractionClosed
from shared.domain.outcomes import FollowUpOutcome
from tests.conftest import NOW, detail, drain_stream
from tests.integration.test_policy_api import call, policy_environment

__all__ = ["policy_environment"]  # the module's autouse fixture: policy function environment

START = NOW - timedelta(days=60)


def decide_live(name: str, customer: str, closed: datetime, outcome: str = "resolved") -> str:
    wiring.use_clock(FixedClock(closed + timedelta(minutes=1)))
    event = InteractionClosed.model_validate(
        detail(
            event_id=f"e-{name}",
            interaction_id=f"i-{name}",
            customer_id=customer,
            outcome=outcome,
            closed_at=closed.isoformat(),
        )
    )
    return wiring.governor().decide(event).decision.decision_id


def release_live(decision_id: str, at: datetime) -> str:
    wiring.use_clock(FixedClock(at))
    settled = wiring.release().release(decision_id).decision
    assert settled is not None
    return str(settled.state)


def respond_live(decision_id: str, at: datetime) -> None:
    wiring.use_clock(FixedClock(at))
    outcome = FollowUpOutcome.model_validate_json(
        f'{{"outcome_id": "o-{decision_id}", "decision_id": "{decision_id}", '
        f'"type": "survey_responded", "occurred_at": "{at.isoformat()}", "score": 9}}'
    )
    [result] = wiring.record_outcomes().run([outcome])
    assert result.recorded, result


def test_simulation_applies_supersession_release_and_logged_responses(aws: Any) -> None:
    # Given, live under the default policy (surveys held 2 h; 90 days without a survey after a response):
    #   cust-r: solved on day 0 -> survey, released at its send time, answered that evening;
    #           solved again on day 40 -> none (SURVEY_COOLDOWN_AFTER_RESPONSE)
    #   cust-s: solved on day 1 at 10:00 and again at 10:30 -> the first survey is superseded
    first = decide_live("r1", "cust-r", START)
    assert release_live(first, START + timedelta(hours=3)) == "released"
    respond_live(first, START + timedelta(hours=8))
    second = decide_live("r2", "cust-r", START + timedelta(days=40))
    assert wiring.store().get_decision(second).reasons[0] == "SURVEY_COOLDOWN_AFTER_RESPONSE"  # type: ignore[union-attr]
    decide_live("s1", "cust-s", START + timedelta(days=1, hours=10))
    decide_live("s2", "cust-s", START + timedelta(days=1, hours=10, minutes=30))
    drain_stream(aws)  # the log stream function lists the decisions on their days' pages
    wiring.use_clock(FixedClock(NOW))
    # When a candidate with a 30-day cooldown after a response is simulated over the last 61 days
    candidate = {"survey_cooldown_after_response_days": 30}
    status, _, report = call("POST", "/policy/simulate", {"policy": candidate, "days": 61})
    assert status == 200, report
    current, changed = report["current"], report["candidate"]
    # Then the current policy reproduces what happened live: the logged response put cust-r in
    # its cooldown, and cust-s's first survey was superseded by the second
    assert current["by_reason"].get("SURVEY_COOLDOWN_AFTER_RESPONSE") == 1
    assert current["outcomes_applied"] == 1
    assert current["cancelled_by_reason"] == {"SUPERSEDED_BY_NEWER_INTERACTION": 1}
    # And every held follow-up fell due: released or cancelled, none left pending
    assert current["pending"] == changed["pending"] == 0
    assert current["released"] == 2  # cust-r's first survey, cust-s's second
    # And under the candidate, day 40 is past the shorter cooldown: a survey
    assert "SURVEY_COOLDOWN_AFTER_RESPONSE" not in changed["by_reason"]
    assert changed["released"] == 3
    assert report["changed_events"] == 1
