"""Outcomes come back (issue 11): POST /outcomes and the FollowUpOutcome queue through their handlers,
on moto with resources from template.yaml; each outcome type and its effect on the next decision,
repeated, conflicting, unknown and unreleasable outcomes."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from infra.lambda_runtime import LambdaContext, acknowledge, api_gateway_event, receive_batch, sqs_event
from shared import wiring
from shared.adapters import outcome_log
from shared.adapters.clock import FixedClock
from shared.usecases.record_outcome import RecordOutcomes
from tests.conftest import NOW, detail, ledger_of
from tests.proof.test_logs_carry_no_payload import logs  # noqa: F401 - the fixture


@pytest.fixture(autouse=True)
def api_environment(aws: Any) -> None:
    for function in ("DecideApiFunction", "OutcomesApiFunction", "OutcomesFunction"):
        os.environ.update(aws.environment(function))
    wiring.reset()
    wiring.use_clock(FixedClock(NOW))


def at(moment: datetime) -> None:
    wiring.use_clock(FixedClock(moment))


def post(module: str, path: str, body: Any) -> tuple[int, Any]:
    handler = __import__(module, fromlist=["handler"]).handler
    raw = body if isinstance(body, str) else json.dumps(body)
    answer = handler(api_gateway_event("POST", path, body=raw), LambdaContext("api"))
    return answer["statusCode"], json.loads(answer["body"])


def decide(customer: str, event: str, now: datetime, **fields: Any) -> dict[str, Any]:
    """A decision made at `now` for an interaction closed three hours before (past any survey delay)."""
    at(now)
    body = detail(
        event_id=event,
        interaction_id=f"int-{event}",
        customer_id=customer,
        closed_at=(now - timedelta(hours=3)).isoformat(),
    )
    status, decision = post("functions.decide_api.app", "/decide", {**body, **fields})
    assert status == 200, decision
    return dict(decision)


def record(body: Any, now: datetime = NOW + timedelta(hours=1)) -> tuple[int, Any]:
    at(now)
    return post("functions.outcomes_api.app", "/outcomes", body)


def outcome(decision: dict[str, Any], kind: str, outcome_id: str = "out-1", **fields: Any) -> dict[str, Any]:
    return {
        "outcome_id": outcome_id,
        "decision_id": decision["decision_id"],
        "type": kind,
        "occurred_at": (NOW + timedelta(minutes=30)).isoformat(),
        **fields,
    }


def outcome_records(stack: Any) -> list[dict[str, Any]]:
    items = boto3.client("dynamodb").scan(TableName=stack.names["DecisionLogTable"], ConsistentRead=True)["Items"]
    return [json.loads(i["doc"]["S"]) for i in items if i.get("record_type", {}).get("S") == "outcome"]


def followup(stack: Any, customer: str, decision: dict[str, Any]) -> Any:
    found = ledger_of(stack, customer).find(decision["decision_id"])
    assert found is not None
    return found


# ---- each outcome type, recorded, and its effect on the next decision ----------------------------


def test_a_survey_response_is_recorded_and_the_next_survey_waits_for_the_cooldown(aws: Any) -> None:
    # Given two customers surveyed today, one of whom answers the survey
    answered = decide("cust-answers", "evt-a1", NOW)
    silent = decide("cust-silent", "evt-s1", NOW)
    assert (answered["action"], answered["state"]) == ("survey", "released")
    status, body = record(outcome(answered, "survey_responded", score=9))
    # Then the response is accepted and kept on the follow-up the next decision reads
    assert (status, body) == (202, {"accepted": 1, "failed": []})
    assert followup(aws, "cust-answers", answered).responded_at == NOW + timedelta(minutes=30)
    assert followup(aws, "cust-silent", silent).responded_at is None
    # When both come back 40 days later, past every survey cap window but inside the 90-day cooldown
    later = NOW + timedelta(days=40)
    again = decide("cust-answers", "evt-a2", later)
    control = decide("cust-silent", "evt-s2", later)
    # Then only the one who answered is spared a survey, and the explanation says until when
    assert control["action"] == "survey"
    assert (again["action"], again["reasons"][0]) == ("none", "SURVEY_COOLDOWN_AFTER_RESPONSE")
    check = next(c for c in again["explanation"] if c["rule"].lower().startswith("survey_cooldown"))
    assert not check["passed"]


def test_a_callback_that_did_not_reach_the_customer_frees_its_cap_slot(aws: Any) -> None:
    # Given two customers called back today (the callback cap is one a week); one call did not get through
    missed = decide("cust-missed", "evt-m1", NOW, outcome="unresolved")
    reached = decide("cust-reached", "evt-r1", NOW, outcome="unresolved")
    assert (missed["action"], missed["state"]) == ("callback", "released")
    assert record(outcome(missed, "callback_completed", "out-m", reached=False))[1]["accepted"] == 1
    assert record(outcome(reached, "callback_completed", "out-r", reached=True, resolved=False))[1]["accepted"] == 1
    assert followup(aws, "cust-reached", reached).reached is True
    assert followup(aws, "cust-reached", reached).resolved is False
    # When both come back unresolved the next day
    tomorrow = NOW + timedelta(days=1)
    again = decide("cust-missed", "evt-m2", tomorrow, outcome="unresolved")
    control = decide("cust-reached", "evt-r2", tomorrow, outcome="unresolved")
    # Then the one never reached can be called back; the cap still holds for the one who was reached
    assert again["action"] == "callback"
    assert (control["action"], control["reasons"][0]) == ("none", "CALLBACK_CAP_REACHED")


def test_a_survey_whose_delivery_failed_no_longer_counts_against_the_survey_cap(aws: Any) -> None:
    # Given two customers surveyed today (one survey a month); one survey bounced
    bounced = decide("cust-bounced", "evt-b1", NOW)
    decide("cust-delivered", "evt-d1", NOW)
    status, body = record(outcome(bounced, "delivery_failed"))
    assert (status, body["accepted"]) == (202, 1)
    assert followup(aws, "cust-bounced", bounced).delivery_failed
    # When both come back five days later
    later = NOW + timedelta(days=5)
    again = decide("cust-bounced", "evt-b2", later)
    control = decide("cust-delivered", "evt-d2", later)
    # Then the one whose survey never arrived may be asked; the other is capped
    assert again["action"] == "survey"
    assert (control["action"], control["reasons"][0]) == ("none", "SURVEY_CAP_REACHED")


# ---- repeats ------------------------------------------------------------------------------------


def test_a_repeated_outcome_is_accepted_and_changes_nothing(aws: Any) -> None:
    # Given a survey response recorded once
    survey = decide("cust-1", "evt-1", NOW)
    first = record(outcome(survey, "survey_responded", score=7))
    version = ledger_of(aws, "cust-1").version
    # When the sender repeats it, on the API and alone or twice within one batch
    repeat = record(outcome(survey, "survey_responded", score=7.0))
    batch = record({"outcomes": [outcome(survey, "survey_responded", score=7)] * 2})
    # Then every copy is accepted, and nothing moved: one record, the ledger untouched
    assert first == repeat == (202, {"accepted": 1, "failed": []})
    assert batch == (202, {"accepted": 2, "failed": []})
    assert ledger_of(aws, "cust-1").version == version
    assert [r["outcome_id"] for r in outcome_records(aws)] == ["out-1"]


def test_an_outcome_id_reused_for_other_content_is_refused_and_the_first_stands(aws: Any) -> None:
    # Given a survey response recorded
    survey = decide("cust-1", "evt-1", NOW)
    record(outcome(survey, "survey_responded", score=7))
    version = ledger_of(aws, "cust-1").version
    # When the same outcome_id comes with another score
    status, body = record(outcome(survey, "survey_responded", score=2))
    # Then that item is refused, naming the idempotency key, and nothing changed
    assert status == 202
    assert body["accepted"] == 0
    assert [(f["index"], f["code"], f["fields"]) for f in body["failed"]] == [
        (0, "IDEMPOTENCY_KEY_REUSED", ["outcome_id"])
    ]
    assert ledger_of(aws, "cust-1").version == version
    assert [r["score"] for r in outcome_records(aws)] == [7.0]


# ---- refusals by code ----------------------------------------------------------------------------


def test_outcomes_that_cannot_be_recorded_are_refused_by_index_with_a_code_and_the_others_go_on(aws: Any) -> None:
    # Given a released survey, a released callback and a suppressed interaction
    survey = decide("cust-1", "evt-1", NOW)
    callback = decide("cust-2", "evt-2", NOW, outcome="unresolved")
    suppressed = decide("cust-3", "evt-3", NOW, outcome="abandoned")
    assert suppressed["state"] == "suppressed"
    early = (NOW - timedelta(hours=1)).isoformat()
    # When one batch carries a good outcome and one of each kind of mistake
    status, body = record(
        {
            "outcomes": [
                outcome(survey, "survey_responded", "ok", score=10),
                {**outcome(survey, "survey_responded", "unknown"), "decision_id": "dcn_nosuchdecision"},
                outcome(suppressed, "delivery_failed", "suppressed"),
                outcome(callback, "survey_responded", "mismatch"),
                outcome(callback, "callback_completed", "score-on-callback", score=3),
                outcome(callback, "callback_completed", "early", occurred_at=early),
                outcome(callback, "callback_completed", "future", occurred_at=(NOW + timedelta(hours=2)).isoformat()),
                "not an object",
            ]
        }
    )
    # Then the good one is recorded and each other is refused at its index, naming what to change
    assert status == 202
    assert body["accepted"] == 1
    assert [(f["index"], f["code"], f.get("fields")) for f in body["failed"]] == [
        (1, "DECISION_NOT_FOUND", ["decision_id"]),
        (2, "DECISION_NOT_RELEASED", ["decision_id"]),
        (3, "OUTCOME_TYPE_MISMATCH", ["type"]),
        (4, "INVALID_OUTCOME", ["score"]),
        (5, "OUTCOME_BEFORE_RELEASE", ["occurred_at"]),
        (6, "INVALID_OUTCOME", ["occurred_at"]),
        (7, "INVALID_OUTCOME", ["body"]),
    ]
    assert [r["outcome_id"] for r in outcome_records(aws)] == ["ok"]


def test_an_outcome_for_a_follow_up_still_held_is_refused_as_not_released(aws: Any) -> None:
    # Given a survey decided in the evening: held (pending) until quiet hours end at 09:00
    evening = NOW.replace(hour=22)
    held = decide("cust-1", "evt-1", evening)
    assert (held["action"], held["state"]) == ("survey", "pending")
    # When a sender reports a response to it before it was ever released
    status, body = record({**outcome(held, "survey_responded"), "occurred_at": evening.isoformat()}, evening)
    # Then it is refused: nothing reached the customer, so nothing came back
    assert (status, body["failed"][0]["code"]) == (202, "DECISION_NOT_RELEASED")
    assert followup(aws, "cust-1", held).responded_at is None
    assert outcome_records(aws) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"outcomes": []}, "outcomes"),
        ({"outcomes": [{}] * 101}, "outcomes"),
        ([1, 2], "body"),
    ],
)
def test_a_body_that_is_no_outcome_or_batch_is_refused_whole(aws: Any, body: Any, field: str) -> None:
    status, answer = record(body)
    assert (status, answer["code"], [f["field"] for f in answer["fields"]]) == (400, "INVALID_INPUT", [field])


def test_a_malformed_json_body_is_refused_as_invalid_json(aws: Any) -> None:
    status, answer = record("{not json")
    assert (status, answer["code"]) == (400, "INVALID_JSON")


# ---- the ledger changing under an outcome ---------------------------------------------------------


def test_an_outcome_racing_a_decision_on_the_same_ledger_loses_neither(aws: Any) -> None:
    # Given a survey that bounced, and a ledger read before another decision lands
    survey = decide("cust-1", "evt-1", NOW)
    stale = ledger_of(aws, "cust-1")
    newer = decide("cust-1", "evt-2", NOW + timedelta(hours=1), outcome="unresolved")
    assert newer["action"] == "callback"  # the newer interaction's callback takes a slot
    loads = iter([{"cust-1": stale}])
    at(NOW + timedelta(hours=1))
    # When the outcome is recorded against the stale ledger (its version condition fails)
    use_case = RecordOutcomes(
        wiring.outcome_log(),
        lambda customers: next(loads, None) or wiring.store().load(customers),
        wiring.current_clock(),
    )
    [result] = use_case.run([_model(outcome(survey, "delivery_failed"))])
    # Then it re-reads and records: the outcome and the newer decision's follow-up are both in the ledger
    assert result.recorded
    current = ledger_of(aws, "cust-1")
    assert current.version == stale.version + 2
    assert followup(aws, "cust-1", survey).delivery_failed
    assert followup(aws, "cust-1", newer).kind == "callback"


def _model(body: dict[str, Any]) -> Any:
    from shared.domain.outcomes import FollowUpOutcome

    return FollowUpOutcome.model_validate(body)


# ---- through the bus: rule, queue, function, dead-letter queue -----------------------------------


def put_outcomes(stack: Any, details: list[Any]) -> None:
    entries = [
        {
            "EventBusName": stack.names["GovernorBus"],
            "Source": "survey.tool",
            "DetailType": "FollowUpOutcome",
            "Detail": json.dumps(d),
        }
        for d in details
    ]
    assert boto3.client("events").put_events(Entries=entries)["FailedEntryCount"] == 0


def drain_outcomes(stack: Any) -> list[dict[str, Any]]:
    from functions.outcomes.app import handler

    sqs = boto3.client("sqs")
    url, arn = stack.urls["OutcomesQueue"], stack.arns["OutcomesQueue"]
    responses = []
    while messages := receive_batch(sqs, url):
        response = handler(sqs_event(messages, arn), LambdaContext("outcomes"))
        acknowledge(sqs, url, messages, response)
        responses.append(response)
    return responses


def parked(stack: Any) -> list[tuple[str, str]]:
    sqs = boto3.client("sqs")
    messages = receive_batch(sqs, stack.urls["OutcomesDeadLetterQueue"])
    return sorted(
        (
            json.loads(m["Body"])["detail"].get("outcome_id", "?"),
            m["MessageAttributes"]["governor_error"]["StringValue"],
        )
        for m in messages
    )


def test_outcomes_on_the_bus_are_recorded_once_and_refused_ones_are_parked_with_their_code(aws: Any) -> None:
    # Given a released callback
    callback = decide("cust-1", "evt-1", NOW, outcome="unresolved")
    at(NOW + timedelta(hours=1))
    good = outcome(callback, "callback_completed", "bus-ok", reached=True, resolved=True)
    # When the sending system puts its outcome on the bus twice, with a refused and a malformed one
    put_outcomes(
        aws,
        [
            good,
            good,
            outcome(callback, "survey_responded", "bus-mismatch"),
            {**outcome(callback, "callback_completed", "bus-bad"), "reached": "yes"},
        ],
    )
    responses = drain_outcomes(aws)
    # Then every record is handled (none left for a retry), the outcome is recorded once
    assert all(r == {"batchItemFailures": []} for r in responses)
    assert [r["outcome_id"] for r in outcome_records(aws)] == ["bus-ok"]
    assert followup(aws, "cust-1", callback).resolved is True
    # And the two that can never be recorded are parked in the dead-letter queue with their code
    assert parked(aws) == [("bus-bad", "INVALID_OUTCOME"), ("bus-mismatch", "OUTCOME_TYPE_MISMATCH")]


def test_the_outcome_record_stays_out_of_decision_queries_and_keys_by_a_hash_of_the_outcome_id(aws: Any) -> None:
    # Given a recorded outcome
    survey = decide("cust-1", "evt-1", NOW)
    record(outcome(survey, "survey_responded", "resp/1#a", score=5))
    # Then its key is derived from the outcome_id, whatever characters that holds
    key = outcome_log.key_of("resp/1#a")
    item = boto3.client("dynamodb").get_item(
        TableName=aws.names["DecisionLogTable"], Key={"decision_id": {"S": key}}, ConsistentRead=True
    )["Item"]
    assert key.startswith("out_") and item["record_type"]["S"] == "outcome"
    # And decision reads never mistake it for a decision
    assert wiring.log_queries().get(key) is None


def test_an_outcome_record_reads_back_as_the_outcome_sent(aws: Any) -> None:
    # Given a recorded callback outcome (a replay of the log reads outcomes back this way)
    callback = decide("cust-1", "evt-1", NOW, outcome="unresolved")
    sent = outcome(callback, "callback_completed", "cb-1", reached=True, resolved=False)
    record(sent)
    item = boto3.client("dynamodb").get_item(
        TableName=aws.names["DecisionLogTable"], Key={"decision_id": {"S": outcome_log.key_of("cb-1")}}
    )["Item"]
    # Then it is the same outcome, for that customer
    customer, read = outcome_log.from_item(item)
    assert (customer, read) == ("cust-1", _model(sent))


def test_recording_outcomes_logs_ids_but_no_outcome_values(aws: Any, logs: Any) -> None:  # noqa: F811 - the fixture
    # Given a survey answered with a telling score, reported over HTTP and on the bus, and a malformed report
    survey = decide("cust-1", "evt-1", NOW)
    record(outcome(survey, "survey_responded", "log-http", score=3.25))
    put_outcomes(
        aws,
        [
            outcome(survey, "survey_responded", "log-bus", score=3.25),
            {**outcome(survey, "survey_responded", "log-bad"), "score": "zqsecretscore"},
        ],
    )
    assert all(r == {"batchItemFailures": []} for r in drain_outcomes(aws))
    # Then the logs name the outcome by id, and carry neither the score nor the malformed value
    output = logs()
    assert "log-bus" in output
    assert "3.25" not in output
    assert "zqsecretscore" not in output
