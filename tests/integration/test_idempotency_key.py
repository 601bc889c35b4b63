"""The idempotency key is scoped by customer and bound to the event's content (issue 10, item 1):
one customer's event_id can never swallow, or read, another customer's decision, and a repeat of an
event_id with other content is refused (409 on POST /decide, an error map for Amazon Connect,
parked in the dead-letter queue on the queue path), while an identical repeat still answers the
first decision. Through the handlers, on moto with resources from template.yaml."""

from __future__ import annotations

import json
import os
from datetime import timedelta, timezone
from typing import Any

import boto3
import pytest

from infra.lambda_runtime import LambdaContext, api_gateway_event, receive_batch
from shared import wiring
from shared.adapters.clock import FixedClock
from tests.conftest import NOW, detail, drain, ledger_of, log_items, put_events


@pytest.fixture(autouse=True)
def api_environment(aws: Any) -> None:
    os.environ.update(aws.environment("DecideApiFunction"))
    wiring.reset()
    wiring.use_clock(FixedClock(NOW))


def decide(body: dict[str, Any]) -> tuple[int, Any]:
    from functions.decide_api.app import handler

    answer = handler(api_gateway_event("POST", "/decide", body=json.dumps(body)), LambdaContext("decide-api"))
    return answer["statusCode"], json.loads(answer["body"])


def contact_flow(contact_id: str, **parameters: str) -> dict[str, str]:
    from functions.decide_api.app import handler

    event = {
        "Name": "ContactFlowEvent",
        "Details": {
            "ContactData": {"ContactId": contact_id, "Channel": "VOICE"},
            "Parameters": parameters,
        },
    }
    return handler(event, LambdaContext("decide-api"))  # type: ignore[no-any-return]


def test_the_same_event_id_for_two_customers_gets_two_decisions(aws: Any, outbound: Any) -> None:
    # Given customer A's event X decided synchronously
    status_a, first = decide(detail(event_id="X", interaction_id="i-a", customer_id="cust-a", outcome="unresolved"))
    # When customer B's own event, from another producer, reuses the event_id X
    status_b, second = decide(detail(event_id="X", interaction_id="i-b", customer_id="cust-b"))
    # Then B gets a decision of its own, not A's
    assert (status_a, status_b) == (200, 200)
    assert second["customer_id"] == "cust-b"
    assert second["decision_id"] != first["decision_id"]
    assert (first["action"], second["action"]) == ("callback", "survey")
    # And both are logged, both took their own slot, both were published
    assert sorted((d["customer_id"], d["event_id"]) for d in log_items(aws)) == [("cust-a", "X"), ("cust-b", "X")]
    assert (ledger_of(aws, "cust-a").version, ledger_of(aws, "cust-b").version) == (1, 1)
    assert sorted(e["detail"]["customer_id"] for e in outbound()) == ["cust-a", "cust-b"]


def test_a_repeat_with_other_content_is_refused_with_409_and_changes_nothing(aws: Any, outbound: Any) -> None:
    # Given an event decided synchronously
    status, first = decide(detail(event_id="X", outcome="resolved"))
    assert status == 200
    published = outbound()
    # When the same customer's producer sends the same event_id with another outcome
    status, error = decide(detail(event_id="X", outcome="unresolved"))
    # Then it is refused, saying to send a new event_id, and the first decision is not leaked as its answer
    assert status == 409
    assert error["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert [f["field"] for f in error["fields"]] == ["event_id"]
    assert first["decision_id"] not in json.dumps(error)
    # And nothing changed: one decision, one slot, nothing published again
    assert log_items(aws) == [first]
    assert ledger_of(aws, "cust-1").version == 1
    assert outbound() == []
    assert len(published) == 1


def test_an_identical_repeat_still_answers_the_first_decision(aws: Any) -> None:
    # Given an event decided synchronously
    _, first = decide(detail(event_id="X"))
    # When it is sent again, even with closed_at written with another offset for the same instant
    closed = (NOW - timedelta(hours=1)).astimezone(timezone(timedelta(hours=2))).isoformat()
    again = decide(detail(event_id="X", closed_at=closed))
    # Then the answer is the first decision (a retry, not another event)
    assert again == (200, first)
    assert log_items(aws) == [first]


def test_amazon_connect_gets_an_error_map_for_a_reused_contact_id(aws: Any) -> None:
    fields = {"customer_id": "cust-9", "closed_at": NOW.isoformat(), "outcome": "resolved"}
    # Given a contact decided once
    first = contact_flow("contact-1", **fields)
    assert first["status"] == "ok"
    # When the flow invokes again for the same contact with another outcome
    refused = contact_flow("contact-1", **{**fields, "outcome": "unresolved"})
    # Then it gets a flat error map naming the code and the field, not the first decision
    assert refused == {
        "status": "error",
        "error_code": "IDEMPOTENCY_KEY_REUSED",
        "error_message": refused["error_message"],
        "error_fields": "event_id",
    }
    assert all(isinstance(v, str) for v in refused.values())
    # And the identical invoke still answers the first decision
    assert contact_flow("contact-1", **fields) == first


def test_on_the_queue_a_reused_event_id_is_parked_and_another_customers_is_decided(aws: Any) -> None:
    # Given an event X of customer A decided through the queue
    original = detail(event_id="X", interaction_id="i-1", customer_id="cust-a")
    put_events(aws, [original])
    drain(aws)
    first = log_items(aws)
    # When X arrives again for A with other content, and customer B's own X arrives too
    reused = detail(event_id="X", interaction_id="i-2", customer_id="cust-a", outcome="unresolved")
    others = detail(event_id="X", interaction_id="i-3", customer_id="cust-b")
    put_events(aws, [reused, others])
    responses = drain(aws)
    # Then no record is failed (a reuse can never succeed, so it is not retried)
    assert all(r == {"batchItemFailures": []} for r in responses)
    # And the reuse is parked in the dead-letter queue, body untouched, with its reason and field
    parked = receive_batch(boto3.client("sqs"), aws.urls["DecideDeadLetterQueue"])
    assert len(parked) == 1
    assert json.loads(parked[0]["Body"])["detail"] == reused
    attributes = {k: v["StringValue"] for k, v in parked[0]["MessageAttributes"].items()}
    assert attributes["governor_error"] == "IDEMPOTENCY_KEY_REUSED"
    assert attributes["governor_fields"] == "detail.event_id"
    # And B's event was decided for B; A's first decision is unchanged and alone
    decisions = {d["customer_id"]: d for d in log_items(aws)}
    assert set(decisions) == {"cust-a", "cust-b"}
    assert [decisions["cust-a"]] == first
    assert decisions["cust-b"]["interaction_id"] == "i-3"


def test_a_reuse_that_would_supersede_its_own_held_survey_is_refused_on_the_queue_and_by_post_decide(
    aws: Any,
) -> None:
    # Given an event X decided through the queue as a survey held until its send time
    closed = NOW - timedelta(minutes=60)
    put_events(aws, [detail(event_id="X", interaction_id="i-1", closed_at=closed.isoformat())])
    drain(aws)
    (first,) = log_items(aws)
    assert (first["action"], first["state"]) == ("survey", "pending")
    # When X comes again with the same interaction closed later, unsolved (which would supersede that
    # very survey), on the queue beside another customer's event, and then through POST /decide
    later = (closed + timedelta(minutes=30)).isoformat()
    reused = detail(event_id="X", interaction_id="i-1", closed_at=later, outcome="unresolved")
    put_events(aws, [reused, detail(event_id="Y", interaction_id="i-9", customer_id="cust-b")])
    responses = drain(aws)
    status, error = decide(reused)
    # Then the queue parks it as a reuse (no record failed: nothing to retry) and decides the other
    assert all(r == {"batchItemFailures": []} for r in responses)
    (parked,) = receive_batch(boto3.client("sqs"), aws.urls["DecideDeadLetterQueue"])
    assert parked["MessageAttributes"]["governor_error"]["StringValue"] == "IDEMPOTENCY_KEY_REUSED"
    assert {d["customer_id"] for d in log_items(aws)} == {"cust-1", "cust-b"}
    # And POST /decide answers 409, not 500; the held survey stands, still pending
    assert (status, error["code"]) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert [d for d in log_items(aws) if d["customer_id"] == "cust-1"] == [first]
