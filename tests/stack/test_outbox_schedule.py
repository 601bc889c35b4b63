"""The local stack runs the template's schedules itself (moto never fires them): a decision that
POST /decide committed but could not publish is published and counted by the outbox function,
invoked by the stack's ticker through its handler, with no request from anyone."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.local.stack import LocalGovernor, running, scheduled_sources
from shared import wiring
from shared.adapters import aws as aws_clients
from tests.conftest import detail

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def ticking() -> Iterator[LocalGovernor]:
    """A stack whose schedules tick every half second, deciding with the event clock (so a
    decision made now is already older than the outbox's grace period)."""
    saved = dict(os.environ)
    with running(port=0, log_to=None, clock="event", schedule_every=0.5) as local:
        yield local
    os.environ.clear()
    os.environ.update(saved)


def post_decide(stack: LocalGovernor, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        stack.url + "/decide",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
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


def test_the_template_schedules_the_outbox_function_every_minute() -> None:
    assert [(s.function.logical_id, s.every) for s in scheduled_sources()] == [("OutboxFunction", 60.0)]


def test_the_stack_publishes_and_counts_a_decision_left_unpublished(ticking: LocalGovernor) -> None:
    # Given EventBridge refusing the product's PutEvents, and a consumer listening on the bus
    refusing = {"on": True}

    def refuse(**_: Any) -> None:
        if refusing["on"]:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutEvents")

    aws_clients.client("events").meta.events.register("before-call.events.PutEvents", refuse)
    read = observe(ticking)
    # When a contact centre's POST /decide commits a decision that cannot be published, and never retries
    closed = datetime.now(UTC) - timedelta(minutes=10)
    event = detail(event_id="ob-1", interaction_id="ob-i1", customer_id="ob-c1", closed_at=closed.isoformat())
    status, error = post_decide(ticking, event)
    assert (status, error["code"]) == (503, "TRY_AGAIN")
    # And EventBridge comes back
    refusing["on"] = False
    # Then, with nobody calling anything, the stack's ticker runs the outbox function, which publishes it once
    deadline, published = time.monotonic() + 30, []
    while not published and time.monotonic() < deadline:
        time.sleep(0.5)
        published = read()
    assert [e["detail"]["event_id"] for e in published] == ["ob-1"]
    # And counts it once; later ticks change nothing
    ticks = ticking.tickers[0].runs
    while ticking.tickers[0].runs < ticks + 3 and time.monotonic() < deadline + 10:
        time.sleep(0.2)
    assert read() == []
    day = (closed + timedelta(seconds=30)).date()  # the event clock decides 30 s after closed_at
    (stats,) = wiring.stats().days(day, day)
    assert stats["total"] == 1
