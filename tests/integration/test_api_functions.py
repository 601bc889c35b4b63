"""POST /events and POST /decide through their handlers with API Gateway proxy events, and the
Amazon Connect contact-flow invoke, on moto with resources from template.yaml."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from infra.lambda_runtime import LambdaContext, api_gateway_event
from shared import wiring
from shared.adapters.clock import FixedClock
from tests.conftest import NOW, detail, drain, ledger_of, log_items


@pytest.fixture(autouse=True)
def api_environment(aws: Any) -> None:
    for function in ("IngestFunction", "DecideApiFunction"):
        os.environ.update(aws.environment(function))
    wiring.reset()
    wiring.use_clock(FixedClock(NOW))


def post(handler_path: str, path: str, body: Any) -> tuple[int, Any]:
    module = __import__(handler_path, fromlist=["handler"])
    raw = body if isinstance(body, str) else json.dumps(body)
    answer = module.handler(api_gateway_event("POST", path, body=raw), LambdaContext("api"))
    return answer["statusCode"], json.loads(answer["body"])


def decide(body: Any) -> tuple[int, Any]:
    return post("functions.decide_api.app", "/decide", body)


def ingest(body: Any) -> tuple[int, Any]:
    return post("functions.ingest.app", "/events", body)


def test_decide_answers_the_committed_decision_in_the_log_shape(aws: Any, outbound: Any) -> None:
    # When a contact centre asks for a decision synchronously
    status, decision = decide(detail(outcome="unresolved"))
    # Then it gets the decision, already committed and published, exactly as the log stores it
    assert status == 200
    assert (decision["action"], decision["reasons"][0]) == ("callback", "CALLBACK_UNRESOLVED")
    assert log_items(aws) == [decision]
    assert [e["detail"] for e in outbound()] == [decision]


def test_the_same_event_sent_to_decide_and_through_the_queue_yields_one_decision(aws: Any) -> None:
    # Given an event decided synchronously
    _, first = decide(detail())
    # When the same event_id also arrives through the bus and the queue
    ingest(detail())
    drain(aws)
    # Then there is one decision, and the ledger moved once
    assert log_items(aws) == [first]
    assert ledger_of(aws, "cust-1").version == 1
    # And asking again answers the same decision
    assert decide(detail()) == (200, first)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (detail(channel="fax"), "channel"),
        (detail(closed_at="yesterday"), "closed_at"),
        (detail(customer_id="jane@example.com"), "customer_id"),
        (detail(sentiment=-3), "sentiment"),
        ({k: v for k, v in detail().items() if k != "outcome"}, "outcome"),
        (detail(closed_at=(NOW + timedelta(hours=2)).isoformat()), "closed_at"),
        ("{not json", "body"),
    ],
)
def test_decide_refuses_a_bad_body_with_400_naming_the_field(aws: Any, body: Any, field: str) -> None:
    status, error = decide(body)
    assert status == 400
    assert error["code"] == "INVALID_INPUT" or error["code"] == "INVALID_JSON"
    assert field in [f["field"] for f in error.get("fields", [{"field": "body"}])]
    assert "Traceback" not in json.dumps(error)
    assert log_items(aws) == []


def test_decide_answers_once_committed_while_eventbridge_refuses_and_the_log_stream_publishes_it(
    outbound: Any,
) -> None:
    # Given EventBridge refusing PutEvents for a while
    from shared.adapters import aws as clients

    refusing = {"on": True}

    def refuse(**_: Any) -> None:
        if refusing["on"]:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "PutEvents")

    clients.client("events").meta.events.register("before-call.events.PutEvents", refuse)
    # When a decision is asked for, the caller gets it: the decide path only commits
    status, decision = decide(detail())
    assert status == 200
    # And nobody hears of it while EventBridge refuses (the log stream function's batch fails)
    assert outbound() == []
    # Then once EventBridge is back, the stream's retry publishes it, once, with no call from anyone
    refusing["on"] = False
    assert [e["detail"]["decision_id"] for e in outbound()] == [decision["decision_id"]]
    # And a retry of the request answers the same decision and publishes nothing more
    assert decide(detail()) == (200, decision)
    assert outbound() == []


def test_ingest_puts_good_items_on_the_bus_and_refuses_bad_ones_by_index(aws: Any) -> None:
    # Given a batch with good items around a bad channel, a missing field and a non-object
    items = [
        detail(event_id="e-0", interaction_id="i-0"),
        detail(event_id="e-1", channel="fax"),
        {k: v for k, v in detail(event_id="e-2").items() if k != "customer_id"},
        7,
        detail(event_id="e-4", interaction_id="i-4", customer_id="cust-4"),
    ]
    # When it is posted
    status, answer = ingest({"events": items})
    # Then the good ones are accepted and the bad ones refused by index, naming the field
    assert status == 202
    assert answer["accepted"] == 2
    assert [(f["index"], f["code"], f.get("fields")) for f in answer["failed"]] == [
        (1, "INVALID_EVENT", ["channel"]),
        (2, "INVALID_EVENT", ["customer_id"]),
        (3, "INVALID_EVENT", ["body"]),
    ]
    assert "fax" not in json.dumps(answer)
    # And exactly the good ones reach the decide function
    drain(aws)
    assert sorted(d["event_id"] for d in log_items(aws)) == ["e-0", "e-4"]


def test_ingest_takes_a_single_detail_object_too(aws: Any) -> None:
    assert ingest(detail()) == (202, {"accepted": 1, "failed": []})


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"events": [detail()] * 101}, "INVALID_INPUT"),
        ({"events": []}, "INVALID_INPUT"),
        ([detail()], "INVALID_INPUT"),
        ("not json at all", "INVALID_JSON"),
    ],
    ids=["over-100", "empty-list", "bare-list", "not-json"],
)
def test_ingest_refuses_a_malformed_request_as_a_whole_with_400(body: Any, code: str) -> None:
    status, error = ingest(body)
    assert (status, error["code"]) == (400, code)
    assert error["message"]


def contact_flow_event(contact_id: str, **parameters: str) -> dict[str, Any]:
    return {
        "Name": "ContactFlowEvent",
        "Details": {
            "ContactData": {"ContactId": contact_id, "Channel": "VOICE", "InstanceARN": "arn:aws:connect:::instance/x"},
            "Parameters": parameters,
        },
    }


def test_a_connect_contact_flow_gets_a_flat_map_of_strings() -> None:
    from functions.decide_api.app import handler

    # Given a contact flow passing the fields as Connect does: every value a string
    event = contact_flow_event(
        "contact-1",
        customer_id="cust-9",
        closed_at=(NOW - timedelta(minutes=2)).isoformat(),
        outcome="resolved",
        sentiment="-0.7",
        contact_attempts="1",
        segment="",
    )
    # When it invokes the function
    answer = handler(event, LambdaContext("decide-api"))
    # Then the answer is flat, every value a string, with the decision and its reasons
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in answer.items())
    assert answer["status"] == "ok"
    assert (answer["action"], answer["reasons"]) == ("callback", "CALLBACK_NEGATIVE_SENTIMENT")
    assert answer["decision_id"].startswith("dcn_")


def test_a_connect_contact_flow_with_a_bad_parameter_gets_an_error_map_naming_it() -> None:
    from functions.decide_api.app import handler

    event = contact_flow_event(
        "contact-2", customer_id="cust-9", closed_at=NOW.isoformat(), outcome="resolved", contact_attempts="many"
    )
    answer = handler(event, LambdaContext("decide-api"))
    assert answer["status"] == "error"
    assert answer["error_fields"] == "contact_attempts"
    assert all(isinstance(v, str) for v in answer.values())


def test_a_missing_bus_is_a_500_for_events_and_no_concern_of_decide(aws: Any) -> None:
    # Given the governor's bus deleted from under the functions (a deployment fault, not load)
    boto3.client("events").delete_event_bus(Name=aws.names["GovernorBus"])
    # When an event is ingested, and another decided synchronously
    ingested = ingest(detail(event_id="e-in", interaction_id="i-in"))
    decided = decide(detail(event_id="e-sync", interaction_id="i-sync"))
    # Then ingest answers 500 INTERNAL (a bug of the deployment, not a retry), without the AWS message
    assert (ingested[0], ingested[1]["code"]) == (500, "INTERNAL")
    assert "does not exist" not in json.dumps(ingested)
    # And decide, which never touches the bus (the log stream function publishes), decides
    assert (decided[0], decided[1]["event_id"]) == (200, "e-sync")


def test_a_throttled_bus_is_a_503_try_again_for_events_and_no_concern_of_decide(aws: Any) -> None:
    from shared.adapters import aws as clients

    def throttled(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "PutEvents")

    clients.client("events").meta.events.register("before-call.events.PutEvents", throttled)
    ingested = ingest(detail(event_id="e-in", interaction_id="i-in"))
    decided = decide(detail(event_id="e-sync", interaction_id="i-sync"))
    assert (ingested[0], ingested[1]["code"]) == (503, "TRY_AGAIN")
    assert decided[0] == 200


def test_ingest_refuses_by_index_what_eventbridge_refused_when_other_items_got_through(aws: Any) -> None:
    # Given EventBridge refusing the second PutEvents request of a batch (items 10..11)
    from shared.adapters import aws as clients

    calls: list[int] = []

    def second_fails(**_: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "PutEvents")

    clients.client("events").meta.events.register("before-call.events.PutEvents", second_fails)
    items = [detail(event_id=f"e-{n}", interaction_id=f"i-{n}") for n in range(12)]
    # When they are ingested
    status, answer = ingest({"events": items})
    # Then the first ten are accepted and the two others refused by index, to be sent again
    assert (status, answer["accepted"]) == (202, 10)
    assert [(f["index"], f["code"]) for f in answer["failed"]] == [(10, "TRY_AGAIN"), (11, "TRY_AGAIN")]


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (lambda: ParamValidationError(report="Entries[0].Detail: invalid type"), 500, "INTERNAL"),
        (NoCredentialsError, 500, "INTERNAL"),
        (lambda: ReadTimeoutError(endpoint_url="https://events"), 503, "TRY_AGAIN"),
        (lambda: EndpointConnectionError(endpoint_url="https://events"), 503, "TRY_AGAIN"),
    ],
    ids=["param-validation", "no-credentials", "read-timeout", "connection"],
)
def test_a_botocore_error_is_transient_only_when_botocore_would_retry_it(error: Any, status: int, code: str) -> None:
    # Given PutEvents failing in botocore itself, before any request is sent
    from shared.adapters import aws as clients

    def fail(**_: Any) -> None:
        raise error()

    clients.client("events").meta.events.register("before-call.events.PutEvents", fail)
    # When an event is ingested
    with kept_log_records() as records:
        answer = ingest(detail())
    # Then a request we built wrong, or missing credentials, is our fault: 500, logged with its
    # trace (it used to be 503 TRY_AGAIN, inviting retries that can never succeed)
    assert (answer[0], answer[1]["code"]) == (status, code)
    errors = [r for r in records if r.levelno >= logging.ERROR]
    assert [r.exc_info is not None for r in errors] == ([True] if status == 500 else [])


@contextmanager
def kept_log_records() -> Iterator[list[logging.LogRecord]]:
    """The records the functions' Powertools loggers emit meanwhile (they all log under the service)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    service = logging.getLogger(os.environ["POWERTOOLS_SERVICE_NAME"])
    keep = Keep()
    service.addHandler(keep)
    try:
        yield records
    finally:
        service.removeHandler(keep)
