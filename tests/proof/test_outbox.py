"""The outbox (issue 10, item 4): a decision committed but never published, because EventBridge
refused it or the process died right after the commit, on a path nobody redelivers (Amazon Connect,
POST /decide whose caller gives up), is found by the outbox function and published once and
counted once; a second run does nothing, and a decision the normal path published is never in it.

Faults are injected on the product's own cached clients (botocore event hooks) and at the named
checkpoints of shared.faults; moto is the only AWS. The outbox function runs through its handler,
as its schedule would run it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.lambda_runtime import LambdaContext, api_gateway_event
from shared import faults, wiring
from shared.adapters import aws as aws_clients
from shared.adapters.clock import FixedClock
from shared.usecases.outbox import GRACE
from tests.conftest import NOW, detail, drain, log_items, put_events


class Crash(BaseException):
    """The process dying: nothing in the handler can catch it (it is not an Exception)."""


@pytest.fixture(autouse=True)
def environment(aws: Any) -> Iterator[None]:
    for function in ("DecideApiFunction", "OutboxFunction"):
        os.environ.update(aws.environment(function))
    wiring.reset()
    wiring.use_clock(FixedClock(NOW))
    yield
    faults.install(None)


def refuse_put_events() -> dict[str, bool]:
    """EventBridge refusing every PutEvents of the product until switched off."""
    refusing = {"on": True}

    def refuse(**_: Any) -> None:
        if refusing["on"]:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutEvents")

    aws_clients.client("events").meta.events.register("before-call.events.PutEvents", refuse)
    return refusing


def via_connect(event: dict[str, Any]) -> Any:
    from functions.decide_api.app import handler

    parameters = {k: str(v) for k, v in event.items()}
    flow = {"Name": "ContactFlowEvent", "Details": {"ContactData": {"ContactId": "c-1"}, "Parameters": parameters}}
    return handler(flow, LambdaContext("decide-api"))


def via_post_decide(event: dict[str, Any]) -> Any:
    from functions.decide_api.app import handler

    answer = handler(api_gateway_event("POST", "/decide", body=json.dumps(event)), LambdaContext("decide-api"))
    return answer["statusCode"], json.loads(answer["body"])


def sweep(at: Any) -> dict[str, Any]:
    """One scheduled run of the outbox function, at `at`."""
    from functions.outbox.app import handler

    wiring.use_clock(FixedClock(at))
    return handler({"source": "aws.scheduler", "detail": {}}, LambdaContext("outbox"))  # type: ignore[no-any-return]


def in_outbox(stack: Any) -> list[str]:
    items = boto3.client("dynamodb").scan(TableName=stack.names["DecisionLogTable"], IndexName="outbox")["Items"]
    return sorted(item["decision_id"]["S"] for item in items)


def counted_total() -> int:
    return sum(day["total"] for day in wiring.stats().days(date(2026, 11, 22), date(2026, 11, 24)))


def publish_refused(send: Callable[[dict[str, Any]], Any], event: dict[str, Any]) -> None:
    refusing = refuse_put_events()
    send(event)
    refusing["on"] = False


def died_after_commit(send: Callable[[dict[str, Any]], Any], event: dict[str, Any]) -> None:
    def die(name: str) -> None:
        if name == faults.AFTER_COMMIT:
            raise Crash(name)

    faults.install(die)
    with pytest.raises(Crash):
        send(event)
    faults.install(None)


@pytest.mark.parametrize("fault", [publish_refused, died_after_commit], ids=["publish-refused", "died-after-commit"])
@pytest.mark.parametrize("send", [via_connect, via_post_decide], ids=["amazon-connect", "post-decide"])
def test_a_committed_decision_left_unpublished_is_published_and_counted_once_by_the_outbox(
    aws: Any, outbound: Any, send: Callable[[dict[str, Any]], Any], fault: Callable[..., None]
) -> None:
    # Given a callback decided synchronously whose publishing never happened, and no caller retrying
    event = detail(event_id="evt-ob", interaction_id="int-ob", customer_id="cust-ob", outcome="unresolved")
    fault(send, event)
    # (the decision and its slot are committed, but nobody heard of it and it is not counted)
    (decision,) = log_items(aws)
    assert decision["action"] == "callback"
    assert outbound() == []
    assert counted_total() == 0
    # Then it is in the outbox
    assert in_outbox(aws) == [decision["decision_id"]]

    # When the outbox function runs within the grace period, it leaves it to the normal path
    assert sweep(NOW + GRACE - timedelta(seconds=1))["found"] == 0
    assert outbound() == []

    # When it runs after the grace period
    report = sweep(NOW + GRACE + timedelta(minutes=1))
    # Then the decision is published once, exactly as logged, and counted once
    assert report == {"found": 1, "published": 1, "counted": 1}
    published = outbound()
    assert [e["detail"] for e in published] == [decision]
    assert [e["detail-type"] for e in published] == ["FollowUpApproved"]
    assert counted_total() == 1
    assert in_outbox(aws) == []

    # And a second run finds nothing, publishes nothing and counts nothing
    assert sweep(NOW + GRACE + timedelta(minutes=2)) == {"found": 0, "published": 0, "counted": 0}
    assert outbound() == []
    assert counted_total() == 1


def test_decisions_the_normal_paths_published_never_stay_in_the_outbox(aws: Any, outbound: Any) -> None:
    # Given events decided through the queue and through POST /decide, all published at once
    put_events(aws, [detail(event_id=f"q-{n}", interaction_id=f"qi-{n}", customer_id=f"qc-{n}") for n in range(12)])
    assert all(r == {"batchItemFailures": []} for r in drain(aws))
    assert via_post_decide(detail(event_id="d-1", customer_id="dc-1"))[0] == 200
    assert len(outbound()) == 13
    # Then none is left in the outbox, and a run after the grace period publishes nothing again
    assert in_outbox(aws) == []
    assert sweep(NOW + GRACE + timedelta(minutes=1)) == {"found": 0, "published": 0, "counted": 0}
    assert outbound() == []
    assert counted_total() == 13


def test_a_queue_decision_whose_publish_keeps_failing_is_not_counted_until_the_outbox_publishes_it(
    aws: Any, outbound: Any
) -> None:
    # Given EventBridge refusing every PutEvents while the decide function handles an event
    refusing = refuse_put_events()
    put_events(aws, [detail(event_id="q-stuck", customer_id="cust-q")])
    from tests.conftest import handle_batch

    _, response = handle_batch(aws)
    # Then the record is failed for a retry, and its decision is neither counted nor published
    assert len(response["batchItemFailures"]) == 1
    assert counted_total() == 0
    (decision,) = log_items(aws)
    assert in_outbox(aws) == [decision["decision_id"]]
    # When EventBridge is back and the outbox function runs before SQS redelivers the record
    refusing["on"] = False
    assert sweep(NOW + GRACE + timedelta(minutes=1))["published"] == 1
    # Then it is published and counted once
    assert [e["detail"]["decision_id"] for e in outbound()] == [decision["decision_id"]]
    assert counted_total() == 1
