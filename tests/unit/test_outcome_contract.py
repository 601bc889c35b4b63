"""The FollowUpOutcome contract (issue 11): the model, its published JSON Schema, and that both agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from infra import schema
from shared.domain.decision import Action
from shared.domain.errors import field_problems
from shared.domain.outcomes import FollowUpOutcome, OutcomeType, outcome_fingerprint

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = Draft202012Validator(
    json.loads(schema.OUTCOME_SCHEMA_FILE.read_text()), format_checker=Draft202012Validator.FORMAT_CHECKER
)


def outcome(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "outcome_id": "out-1",
        "decision_id": "dcn_abc",
        "type": "survey_responded",
        "occurred_at": "2026-11-23T12:30:00Z",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def model_fields(body: dict[str, Any]) -> set[str]:
    try:
        FollowUpOutcome.model_validate(body)
    except ValidationError as error:
        return {p["field"] for p in field_problems(error)}
    return set()


def schema_fields(body: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for error in VALIDATOR.iter_errors(body):
        if error.path:
            found.add(str(error.path[0]))
        elif error.validator == "required":
            found.update(name for name in error.validator_value if name not in body)
        elif error.validator == "additionalProperties":
            found.update(name for name in body if name not in VALIDATOR.schema["properties"])
    return found


def test_committed_schema_is_what_the_model_generates() -> None:
    # Given the schema file sending systems validate against, When it is generated from the model
    # Then they are the same, byte for byte
    assert schema.OUTCOME_SCHEMA_FILE.read_text() == schema.render("followup-outcome"), (
        "infra/followup-outcome.schema.json is out of date with shared/domain/outcomes.py; run `make schema`"
    )


def test_schema_command_prints_the_outcome_schema_and_nothing_else() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "infra.schema", "followup-outcome"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout == schema.render("followup-outcome")
    Draft202012Validator.check_schema(json.loads(run.stdout))


VALID = [
    pytest.param(outcome(), id="survey-response-without-score"),
    pytest.param(outcome(score=0), id="survey-score-0"),
    pytest.param(outcome(score=10), id="survey-score-10"),
    pytest.param(outcome(score=7.5), id="survey-score-fraction"),
    pytest.param(outcome(type="callback_completed"), id="callback-nothing-known"),
    pytest.param(outcome(type="callback_completed", reached=True, resolved=True), id="callback-solved"),
    pytest.param(outcome(type="callback_completed", reached=False), id="callback-missed"),
    pytest.param(outcome(type="callback_completed", reached=False, resolved=False), id="callback-missed-unresolved"),
    pytest.param(outcome(type="delivery_failed", occurred_at="2026-11-23T13:30:00+01:00"), id="delivery-failed"),
    pytest.param(outcome(score=None, reached=None), id="nulls-as-absent"),
]


@pytest.mark.parametrize("body", VALID)
def test_valid_outcomes_pass_both_the_model_and_the_schema(body: dict[str, Any]) -> None:
    assert model_fields(body) == set()
    assert schema_fields(body) == set()


INVALID = [
    pytest.param("score", outcome(score=11), id="score-above-10"),
    pytest.param("score", outcome(score=-1), id="score-below-0"),
    pytest.param("score", outcome(score=True), id="score-bool"),
    pytest.param("score", outcome(score="9"), id="score-text"),
    pytest.param("score", outcome(type="callback_completed", score=3), id="score-on-a-callback"),
    pytest.param("score", outcome(type="delivery_failed", score=3), id="score-on-a-failure"),
    pytest.param("reached", outcome(reached=True), id="reached-on-a-survey"),
    pytest.param("resolved", outcome(type="delivery_failed", resolved=False), id="resolved-on-a-failure"),
    pytest.param("reached", outcome(type="callback_completed", reached="yes"), id="reached-text"),
    pytest.param(
        "resolved", outcome(type="callback_completed", reached=False, resolved=True), id="resolved-without-reaching"
    ),
    pytest.param("type", outcome(type="survey_ignored"), id="type-unknown"),
    pytest.param("type", outcome(type=None), id="type-missing"),
    pytest.param("outcome_id", outcome(outcome_id=""), id="outcome-id-empty"),
    pytest.param("outcome_id", outcome(outcome_id="out 1"), id="outcome-id-space"),
    pytest.param("outcome_id", outcome(outcome_id="x" * 129), id="outcome-id-too-long"),
    pytest.param("decision_id", outcome(decision_id=None), id="decision-id-missing"),
    pytest.param("occurred_at", outcome(occurred_at="2026-11-23T12:30:00"), id="occurred-at-no-offset"),
    pytest.param("occurred_at", outcome(occurred_at="yesterday"), id="occurred-at-not-a-date"),
    pytest.param("sent_by", outcome(sent_by="survey-tool"), id="unknown-field"),
]


@pytest.mark.parametrize(("field", "body"), INVALID)
def test_invalid_outcomes_fail_both_the_model_and_the_schema_at_that_field(field: str, body: dict[str, Any]) -> None:
    # Given an outcome breaking one rule, When the model and the published schema check it
    # Then both refuse it, for that field alone
    assert model_fields(body) == {field}
    assert schema_fields(body) == {field}


def test_a_misplaced_field_is_refused_with_the_type_it_belongs_to() -> None:
    with pytest.raises(ValidationError) as refused:
        FollowUpOutcome.model_validate(outcome(type="callback_completed", score=3))
    [problem] = field_problems(refused.value)
    assert problem["field"] == "score"
    assert "only with type survey_responded" in problem["message"]


def test_each_type_fits_only_the_actions_it_can_come_back_from() -> None:
    assert [a for a in Action if OutcomeType.SURVEY_RESPONDED.fits(a)] == [Action.SURVEY]
    assert [a for a in Action if OutcomeType.CALLBACK_COMPLETED.fits(a)] == [Action.CALLBACK]
    assert [a for a in Action if OutcomeType.DELIVERY_FAILED.fits(a)] == [Action.SURVEY, Action.CALLBACK]


def test_the_fingerprint_is_the_same_for_the_same_outcome_however_it_is_spelt() -> None:
    # Given one outcome sent with another offset, an integral score and an explicit null
    first = FollowUpOutcome.model_validate(outcome(score=7.0, occurred_at="2026-11-23T12:30:00Z"))
    again = FollowUpOutcome.model_validate(outcome(score=7, occurred_at="2026-11-23T13:30:00+01:00", reached=None))
    other = FollowUpOutcome.model_validate(outcome(score=6))
    # Then a repeat matches and another score does not
    assert outcome_fingerprint(first) == outcome_fingerprint(again)
    assert outcome_fingerprint(first) != outcome_fingerprint(other)


def test_an_outcome_stamped_far_in_the_future_is_a_clock_problem() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert FollowUpOutcome.model_validate(outcome(occurred_at="2026-11-23T12:14:00Z")).clock_problem(now) is None
    assert "future" in str(
        FollowUpOutcome.model_validate(outcome(occurred_at="2026-11-23T12:16:00Z")).clock_problem(now)
    )
