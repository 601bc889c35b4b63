"""Outcomes end to end on `governor local` (issue 11): POST /outcomes over HTTP through the gateway, and
FollowUpOutcome events on the bus through rule, queue, poller and the outcomes function."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from infra.lambda_runtime import receive_batch
from infra.local.stack import LocalGovernor
from tests.conftest import detail
from tests.stack.test_local_stack import call
from tests.zones import zone_where_it_is

pytestmark = pytest.mark.server


def unresolved(customer: str, event: str) -> dict[str, Any]:
    return detail(
        event_id=event,
        interaction_id=f"int-{event}",
        customer_id=customer,
        outcome="unresolved",
        customer_timezone=zone_where_it_is(12),
        closed_at=(datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
    )


def outcome(decision: dict[str, Any], kind: str, outcome_id: str) -> dict[str, Any]:
    occurred = datetime.now(UTC).isoformat()
    return {"outcome_id": outcome_id, "decision_id": decision["decision_id"], "type": kind, "occurred_at": occurred}


def test_a_missed_callback_reported_over_http_frees_the_slot_for_the_next_callback(stack: LocalGovernor) -> None:
    # Given a callback released at once to a customer
    status, first = call(stack, "POST", "/decide", unresolved("so-c1", "so-e1"))
    assert (status, first["action"], first["state"]) == (200, "callback", "released")
    # When the dialler reports it never reached them, then repeats the report
    missed = {**outcome(first, "callback_completed", "so-o1"), "reached": False}
    answers = [call(stack, "POST", "/outcomes", missed) for _ in range(2)]
    # Then both copies are accepted (the repeat changes nothing)
    assert answers == [(202, {"accepted": 1, "failed": []})] * 2
    # And the customer coming back unresolved can be called back, within the one-a-week cap
    status, second = call(stack, "POST", "/decide", unresolved("so-c1", "so-e2"))
    assert (status, second["action"]) == (200, "callback")


def test_outcomes_put_on_the_bus_are_recorded_by_the_poller_and_refused_ones_parked(stack: LocalGovernor) -> None:
    # Given a released callback
    _, decision = call(stack, "POST", "/decide", unresolved("so-c2", "so-e3"))
    assert decision["state"] == "released"
    # When its outcome and one that does not fit it are put on the bus
    bus = stack.resources.names["GovernorBus"]
    good = {**outcome(decision, "callback_completed", "so-bus-ok"), "reached": True, "resolved": True}
    wrong = outcome(decision, "survey_responded", "so-bus-wrong")
    entries = [
        {"EventBusName": bus, "Source": "dialler", "DetailType": "FollowUpOutcome", "Detail": json.dumps(d)}
        for d in (good, wrong)
    ]
    assert boto3.client("events").put_events(Entries=entries)["FailedEntryCount"] == 0
    assert stack.wait_drained(timeout=60)
    # Then the good one is recorded, so sending it again over HTTP is a repeat that changes nothing
    assert call(stack, "POST", "/outcomes", good) == (202, {"accepted": 1, "failed": []})
    status, answer = call(stack, "POST", "/outcomes", {**good, "resolved": False})
    assert (status, [f["code"] for f in answer["failed"]]) == (202, ["IDEMPOTENCY_KEY_REUSED"])
    # And the one that can never be recorded waits in the outcomes dead-letter queue with its code
    parked = receive_batch(boto3.client("sqs"), stack.resources.urls["OutcomesDeadLetterQueue"])
    codes = [m["MessageAttributes"]["governor_error"]["StringValue"] for m in parked]
    assert codes == ["OUTCOME_TYPE_MISMATCH"]
