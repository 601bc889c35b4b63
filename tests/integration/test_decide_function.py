"""The decide function end to end on moto: EventBridge bus -> rule -> SQS -> handler -> DynamoDB,
outbound EventBridge events, dead-letter parking. Resources come from template.yaml."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from shared import wiring
from shared.adapters.clock import FixedClock
from tests.conftest import (
    NOW,
    detail,
    drain,
    drain_stream,
    end_visibility,
    handle_batch,
    ledger_of,
    log_items,
    put_events,
)


@pytest.fixture(autouse=True)
def fixed_clock(aws: Any) -> None:
    wiring.use_clock(FixedClock(NOW))


def test_events_on_the_bus_get_one_decision_each_logged_and_published(aws: Any, outbound: Any) -> None:
    # Given a solved, an unsolved and an abandoned interaction put on the bus by a help desk
    put_events(
        aws,
        [
            detail(event_id="e-solved", interaction_id="i-1", customer_id="c-1"),
            detail(event_id="e-unsolved", interaction_id="i-2", customer_id="c-2", outcome="unresolved"),
            detail(event_id="e-abandoned", interaction_id="i-3", customer_id="c-3", outcome="abandoned"),
        ],
    )
    # When the decide function consumes the queue
    responses = drain(aws)
    # Then nothing failed, and each event has exactly one decision with its reasons
    assert all(r == {"batchItemFailures": []} for r in responses)
    decisions = {d["event_id"]: d for d in log_items(aws)}
    assert {e: (d["action"], d["reasons"][0]) for e, d in decisions.items()} == {
        "e-solved": ("survey", "SURVEY_ELIGIBLE"),
        "e-unsolved": ("callback", "CALLBACK_UNRESOLVED"),
        "e-abandoned": ("none", "ABANDONED_INTERACTION"),
    }
    # And approvals took a slot in the ledger, suppressions did not
    assert ledger_of(aws, "c-1").version == 1
    assert ledger_of(aws, "c-2").version == 1
    assert ledger_of(aws, "c-3").version == 0
    # And every decision went out on the bus, approvals and suppressions by their detail-type
    published = {e["detail"]["decision_id"]: e for e in outbound()}
    assert set(published) == {d["decision_id"] for d in decisions.values()}
    kinds = {e["detail"]["event_id"]: e["detail-type"] for e in published.values()}
    # (the survey is held by the survey delay until its send time: scheduled, not yet approved)
    assert kinds == {
        "e-solved": "FollowUpScheduled",
        "e-unsolved": "FollowUpApproved",
        "e-abandoned": "FollowUpSuppressed",
    }
    assert {e: d["state"] for e, d in decisions.items()} == {
        "e-solved": "pending",
        "e-unsolved": "released",
        "e-abandoned": "suppressed",
    }
    assert all(e["source"] == "followup.governor" for e in published.values())
    # And the logged decision is the published one, field for field
    assert published[decisions["e-solved"]["decision_id"]]["detail"] == decisions["e-solved"]


def test_a_malformed_record_in_a_batch_of_ten_fails_alone_and_is_parked_with_its_field(aws: Any) -> None:
    # Given nine valid events and one whose channel is not in the contract
    good = [detail(event_id=f"e-{i}", interaction_id=f"i-{i}", customer_id=f"c-{i}") for i in range(9)]
    bad = detail(event_id="e-bad", interaction_id="i-bad", customer_id="c-bad", channel="fax")
    put_events(aws, [*good[:4], bad, *good[4:]])
    # When the ten arrive in one batch
    sqs = boto3.client("sqs")
    from functions.decide.app import handler
    from infra.lambda_runtime import LambdaContext, acknowledge, receive_batch, sqs_event

    messages = receive_batch(sqs, aws.urls["DecideQueue"])
    assert len(messages) == 10
    response = handler(sqs_event(messages, aws.arns["DecideQueue"]), LambdaContext("decide"))
    acknowledge(sqs, aws.urls["DecideQueue"], messages, response)
    # Then no record is reported failed (the bad one can never succeed, so it is not retried)
    assert response == {"batchItemFailures": []}
    # And the nine valid events are decided
    assert sorted(d["event_id"] for d in log_items(aws)) == sorted(d["event_id"] for d in good)
    # And the bad one is parked in the dead-letter queue, untouched, with the field that was wrong
    parked = receive_batch(sqs, aws.urls["DecideDeadLetterQueue"])
    assert len(parked) == 1
    assert json.loads(parked[0]["Body"])["detail"] == bad
    attributes = {k: v["StringValue"] for k, v in parked[0]["MessageAttributes"].items()}
    assert attributes["governor_error"] == "INVALID_EVENT"
    assert attributes["governor_fields"] == "detail.channel"
    assert "fax" not in attributes["governor_message"]
    # And the decide queue is empty: nothing will be retried
    assert receive_batch(sqs, aws.urls["DecideQueue"]) == []


def test_a_redelivered_event_returns_the_first_decision_and_changes_nothing(aws: Any, outbound: Any) -> None:
    # Given an event that was decided and published
    event = detail(event_id="e-1", interaction_id="i-1", customer_id="c-1")
    put_events(aws, [event])
    drain(aws)
    first = log_items(aws)
    ledger_before = ledger_of(aws, "c-1")
    first_published = outbound()
    # When the same event arrives again, once now and once two weeks later (a dead-letter redrive)
    put_events(aws, [event])
    drain(aws)
    wiring.use_clock(FixedClock(NOW + timedelta(days=14)))
    put_events(aws, [event])
    drain(aws)
    # Then the log still holds one decision, the ledger did not move
    assert log_items(aws) == first
    assert ledger_of(aws, "c-1") == ledger_before
    # And nothing is published again: a redelivery writes nothing, so the log's stream carries
    # nothing new, and the first publication stands
    assert [e["detail"]["decision_id"] for e in first_published] == [first[0]["decision_id"]]
    assert outbound() == []


def test_a_surveyed_interaction_re_closed_unresolved_gets_one_callback_and_never_a_second(aws: Any) -> None:
    from tests.integration.test_release import fire

    os.environ.update(aws.environment("ReleaseFunction"))
    # Given an interaction that got a survey, released at its send time
    put_events(aws, [detail(event_id="e-1", interaction_id="i-1", customer_id="c-1")])
    drain(aws)
    (survey,) = log_items(aws)
    fire(survey["decision_id"], datetime.fromisoformat(survey["send_at"]))
    # When it is re-closed (a new event id) as unresolved five days later
    wiring.use_clock(FixedClock(NOW + timedelta(days=5)))
    closed = (NOW + timedelta(days=5, hours=-1)).isoformat()
    put_events(
        aws, [detail(event_id="e-2", interaction_id="i-1", customer_id="c-1", outcome="unresolved", closed_at=closed)]
    )
    drain(aws)
    # Then it gets a callback: the customer has told us the problem is not solved
    second = next(d for d in log_items(aws) if d["event_id"] == "e-2")
    assert (second["action"], second["reasons"][0]) == ("callback", "CALLBACK_UNRESOLVED")
    # And when it is re-closed unresolved once more, there is no second callback
    wiring.use_clock(FixedClock(NOW + timedelta(days=6)))
    closed = (NOW + timedelta(days=6, hours=-1)).isoformat()
    put_events(
        aws, [detail(event_id="e-3", interaction_id="i-1", customer_id="c-1", outcome="unresolved", closed_at=closed)]
    )
    drain(aws)
    third = next(d for d in log_items(aws) if d["event_id"] == "e-3")
    assert (third["action"], third["reasons"]) == ("none", ["ALREADY_FOLLOWED_UP"])


def test_a_throttled_commit_fails_that_record_alone_and_its_retry_decides_once(aws: Any) -> None:
    # Given two events, and DynamoDB throttling the transaction of the first customer once
    put_events(
        aws,
        [
            detail(event_id="e-1", interaction_id="i-1", customer_id="c-throttled"),
            detail(event_id="e-2", interaction_id="i-2", customer_id="c-fine"),
        ],
    )
    throttled = {"left": 1}

    def throttle(params: dict[str, Any], **_: Any) -> None:
        items = params.get("TransactItems", [])
        if throttled["left"] and items and "c-throttled" in json.dumps(items[0]):
            throttled["left"] -= 1
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                "TransactWriteItems",
            )

    from shared.adapters import aws as aws_clients

    aws_clients.client("dynamodb").meta.events.register("provide-client-params.dynamodb.TransactWriteItems", throttle)
    # When the batch is handled
    messages, response = handle_batch(aws)
    # Then only the throttled record is reported failed, the other is decided
    throttled_id = next(m["MessageId"] for m in messages if "c-throttled" in m["Body"])
    assert response == {"batchItemFailures": [{"itemIdentifier": throttled_id}]}
    assert [d["event_id"] for d in log_items(aws)] == ["e-2"]
    # And when SQS redelivers it (visibility timeout over), it is decided exactly once
    end_visibility(aws, messages, response)
    drain(aws)
    assert sorted(d["event_id"] for d in log_items(aws)) == ["e-1", "e-2"]
    assert ledger_of(aws, "c-throttled").version == 1


def test_a_record_is_done_once_committed_and_its_decision_is_published_when_eventbridge_takes_it(
    aws: Any, outbound: Any
) -> None:
    # Given EventBridge refusing every PutEvents for a while
    refusing = {"on": True}

    def refuse(**_: Any) -> None:
        if refusing["on"]:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutEvents")

    from shared.adapters import aws as aws_clients

    aws_clients.client("events").meta.events.register("before-call.events.PutEvents", refuse)
    put_events(aws, [detail(event_id="e-1", interaction_id="i-1", customer_id="c-1")])
    # When the batch is handled, the record is done: its decision is committed
    _, response = handle_batch(aws)
    assert response == {"batchItemFailures": []}
    assert [d["event_id"] for d in log_items(aws)] == ["e-1"]
    # And nobody hears of it while EventBridge refuses: the log stream function fails its batch
    assert outbound() == []
    # Then once EventBridge is back, the stream's retry publishes it, with no redelivery and no second decision
    refusing["on"] = False
    assert [e["detail"]["event_id"] for e in outbound()] == ["e-1"]
    assert handle_batch(aws)[0] == []
    assert ledger_of(aws, "c-1").version == 1


# A bug of ours at each step of the path: a programming error, not an AWS failure.
BUGS = {
    "reading-ledgers": ("shared.adapters.ledger", "key"),
    "deciding": ("shared.domain.engine", "decide"),
}
# ... and of the log stream function, which publishes and counts what the decide path committed.
# A step of a stream reader, and the reader's handler.
STREAM_BUGS = {
    "publishing": ("shared.adapters.publisher", "entry", "functions.log_stream.app"),
    "counting": ("shared.usecases.log_stream", "decision_counts", "functions.log_count.app"),
}


@pytest.mark.parametrize("step", list(BUGS))
def test_a_bug_of_ours_fails_the_invocation_instead_of_being_retried_quietly(
    aws: Any, outbound: Any, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    import importlib

    from functions.decide.app import handler
    from infra.lambda_runtime import LambdaContext, receive_batch, sqs_event

    # Given three events on the queue, and a TypeError at one step of the decide path
    module, name = BUGS[step]

    def bug(*_: Any, **__: Any) -> Any:
        raise TypeError("unsupported operand type(s)")

    monkeypatch.setattr(importlib.import_module(module), name, bug)
    put_events(aws, [detail(event_id=f"e-{n}", interaction_id=f"i-{n}", customer_id=f"c-{n}") for n in range(3)])
    sqs = boto3.client("sqs")
    messages = receive_batch(sqs, aws.urls["DecideQueue"])
    # When the decide function handles them
    # Then the invocation itself fails (Lambda's Errors metric, the function's alarm), rather than
    # answering a partial batch failure that SQS would retry quietly into the dead-letter queue
    with pytest.raises(TypeError):
        handler(sqs_event(messages, aws.arns["DecideQueue"]), LambdaContext("decide"))
    # And once the bug is fixed, SQS's redelivery of the batch decides, publishes and counts each event once
    monkeypatch.undo()
    for message in messages:
        sqs.change_message_visibility(
            QueueUrl=aws.urls["DecideQueue"], ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    assert all(r == {"batchItemFailures": []} for r in drain(aws))
    decided = log_items(aws)
    assert sorted(d["event_id"] for d in decided) == ["e-0", "e-1", "e-2"]
    assert {e["detail"]["decision_id"] for e in outbound()} == {d["decision_id"] for d in decided}
    (day,) = wiring.stats().days(NOW.date(), NOW.date())
    assert day["total"] == 3


@pytest.mark.parametrize("step", list(STREAM_BUGS))
def test_a_bug_of_ours_fails_the_stream_reader_invocation_before_anything_is_counted(
    aws: Any, outbound: Any, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    import importlib

    from infra.lambda_runtime import LambdaContext
    from infra.local.streams import lambda_record, streams_client

    # Given three events decided and committed, and a TypeError at one step of a stream reader
    put_events(aws, [detail(event_id=f"e-{n}", interaction_id=f"i-{n}", customer_id=f"c-{n}") for n in range(3)])
    assert handle_batch(aws)[1] == {"batchItemFailures": []}
    module, name, function = STREAM_BUGS[step]
    handler = importlib.import_module(function).handler

    def bug(*_: Any, **__: Any) -> Any:
        raise TypeError("unsupported operand type(s)")

    monkeypatch.setattr(importlib.import_module(module), name, bug)
    client, arn = streams_client(), aws.get_att("DecisionLogTable", "StreamArn")
    (shard,) = client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = client.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
    records = client.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    # When the function handles the batch of their log records
    # Then the invocation itself fails (its Errors alarm), and nothing was counted
    with pytest.raises(TypeError):
        handler({"Records": [lambda_record(r, arn, "us-east-1") for r in records]}, LambdaContext("stream-reader"))
    assert wiring.stats().days(NOW.date(), NOW.date())[0]["total"] == 0
    # And once the bug is fixed, Lambda's retry of the batch publishes and counts each decision once
    monkeypatch.undo()
    assert [a["batchItemFailures"] for a in drain_stream(aws)] == [[], []]
    decided = log_items(aws)
    assert {e["detail"]["decision_id"] for e in outbound()} == {d["decision_id"] for d in decided}
    (day,) = wiring.stats().days(NOW.date(), NOW.date())
    assert day["total"] == 3
