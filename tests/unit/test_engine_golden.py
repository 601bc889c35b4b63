"""Issue 12's proof: the engine now records each rule's code, verdict and figures and renders the
sentences when read, and the log stores a compact entry, yet every public answer is what the code
before the change answered, byte for byte (tests/fixtures/engine_golden.json.xz, written by that
code: tests/unit/engine_golden.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from shared.adapters import decision_log
from shared.domain.decision import Decision, State
from shared.domain.policy import Policy
from tests.unit.engine_golden import LOG_RETENTION, load, policies, run_case, run_recheck

GOLDEN = load()
POLICIES = policies()
CASES: list[dict[str, Any]] = GOLDEN["cases"]


def test_the_golden_record_covers_every_reason_and_every_rule_that_can_fail() -> None:
    # Given the recorded decisions
    decided = [json.loads(c["decision"]) for c in CASES]
    reasons = {r for d in decided for r in d["reasons"]}
    failed = {c["rule"] for d in decided for c in d["explanation"] if not c["passed"]}
    # Then they hold every reason code and the failures of every rule, capped waits included
    from shared.domain.decision import Reason

    assert reasons == {str(r) for r in Reason}
    assert {"survey_fatigue", "survey_cooldown_after_response", "min_gap_before_survey", "opt_out"} <= failed
    assert any(d["supersedes"] for d in decided)
    assert len({c["policy"] for c in CASES}) == len(POLICIES)


@pytest.mark.parametrize("chunk", range(4))
def test_decisions_dump_byte_for_byte_as_before(chunk: int) -> None:
    for case in CASES[chunk::4]:
        # Given a recorded case, When the engine decides it again
        decision = run_case(case, POLICIES)
        # Then its JSON is the recorded one, byte for byte, and so is its JSON-mode dump
        assert decision.model_dump_json() == case["decision"], case["event"]["event_id"]
        assert decision.model_dump(mode="json") == json.loads(case["decision"])


def test_rechecks_answer_as_before() -> None:
    rechecked = [c for c in CASES if "recheck" in c]
    assert len(rechecked) > 50
    for case in rechecked:
        # Given a held decision (read back from its recorded JSON, as the release reads it)
        decision = Decision.model_validate_json(case["decision"])
        for scenario, expected in case["recheck"].items():
            # When it is re-checked in the recorded scenario
            # Then the state, reason and every check are the recorded ones
            assert run_recheck(case, decision, scenario, POLICIES) == expected, (scenario, case["event"]["event_id"])


def test_log_entries_stored_before_the_change_read_back_identical() -> None:
    for entry in GOLDEN["items"]:
        # Given a log item in the old full-JSON form
        # When it is read
        # Then it is the recorded decision, byte for byte
        assert decision_log.from_item(entry["item"]).model_dump_json() == entry["decision"]


@pytest.mark.parametrize("chunk", range(2))
def test_new_log_entries_read_back_identical(chunk: int) -> None:
    for case in CASES[chunk::2]:
        # Given a decision written to the log now
        decision = run_case(case, POLICIES)
        item = decision_log.to_item(decision, LOG_RETENTION)
        # When it is read back
        read = decision_log.from_item(item)
        # Then it answers exactly what was recorded before the change
        assert read.model_dump_json() == case["decision"]
        assert read == decision


def test_a_new_entry_whose_lifecycle_moved_on_reads_with_the_top_level_state() -> None:
    # Given a held decision written now, then released (the release updates the top level only)
    case = next(c for c in CASES if json.loads(c["decision"])["state"] == "pending")
    decision = run_case(case, POLICIES)
    item = decision_log.to_item(decision, LOG_RETENTION)
    later = decision.decided_at + timedelta(hours=3)
    item.update(decision_log.state_attributes(decision.with_state(State.RELEASED, None, later)))
    # When it is read
    read = decision_log.from_item(item)
    # Then the lifecycle is the released one and everything else the recorded decision
    assert read.state is State.RELEASED and read.state_changed_at == later
    expected = json.loads(case["decision"]) | {
        "state": "released",
        "state_changed_at": read.model_dump(mode="json")["state_changed_at"],
    }
    assert read.model_dump(mode="json") == expected


def test_policies_of_the_golden_record_still_validate() -> None:
    assert all(isinstance(p, Policy) for p in POLICIES.values())
