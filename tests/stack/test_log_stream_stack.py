"""The local stack reads the decision log's stream as Lambda's event source mapping would (moto keeps
the stream and invokes nothing): a decision POST /decide committed while EventBridge refused it is
published and counted by the log stream function once EventBridge is back, with no request from
anyone, and /health shows the stream's poller."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.local.stack import LocalGovernor
from shared import wiring
from shared.adapters import aws as aws_clients
from tests.conftest import detail

pytestmark = pytest.mark.server


def post(stack: LocalGovernor, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        stack.url + path, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def observe(stack: LocalGovernor) -> Any:
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="stack-outbound-observer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = stack.resources.names["GovernorBus"]
    events.put_rule(Name="stack-observe", EventBusName=bus, EventPattern=json.dumps({"source": ["followup.governor"]}))
    events.put_targets(Rule="stack-observe", EventBusName=bus, Targets=[{"Id": "observer", "Arn": arn}])

    def read() -> list[dict[str, Any]]:
        found = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found

    return read


def test_the_stack_publishes_and_counts_a_decision_once_eventbridge_takes_it(stack: LocalGovernor) -> None:
    # Given EventBridge refusing the product's PutEvents, and a consumer listening on the bus
    refusing = {"on": True}

    def refuse(**_: Any) -> None:
        if refusing["on"]:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutEvents")

    aws_clients.client("events").meta.events.register("before-call.events.PutEvents", refuse)
    read = observe(stack)
    poller = stack.stream_thread.poller if stack.stream_thread else None
    assert poller is not None
    # When a contact centre's POST /decide asks for a decision, and never retries
    closed = datetime.now(UTC) - timedelta(minutes=10)
    event = detail(event_id="ls-1", interaction_id="ls-i1", customer_id="ls-c1", closed_at=closed.isoformat())
    status, decision = post(stack, "/decide", event)
    # Then it gets the committed decision at once
    assert (status, decision["event_id"]) == (200, "ls-1")
    # And the stream's poller keeps failing its batch while EventBridge refuses
    deadline = time.monotonic() + 30
    while poller.failed_batches == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert poller.failed_batches >= 1
    assert read() == []
    # When EventBridge is back
    refusing["on"] = False
    # Then, with nobody calling anything, the log stream function publishes it once and counts it once
    published: list[dict[str, Any]] = []
    while not published and time.monotonic() < deadline:
        time.sleep(0.2)
        published = read()
    assert [(e["detail-type"], e["detail"]["decision_id"]) for e in published] == [
        ("FollowUpApproved" if decision["state"] == "released" else "FollowUpScheduled", decision["decision_id"])
    ]
    assert stack.wait_drained(timeout=30)
    day = datetime.fromisoformat(decision["decided_at"].replace("Z", "+00:00")).date()
    (stats,) = wiring.stats().days(day, day)
    assert stats["total"] == 1
    assert read() == []
    # And /health shows the poller alive, having handled the record
    with urllib.request.urlopen(stack.url + "/health", timeout=30) as answer:
        health = json.loads(answer.read())
    assert health["pollers"]["DecisionLogTable/stream/LogStreamFunction"]["alive"] is True
    assert health["pollers"]["DecisionLogTable/stream/LogStreamFunction"]["records"] >= 1
    assert health["pollers"]["DecisionLogTable/stream/LogCountFunction"]["records"] >= 1
