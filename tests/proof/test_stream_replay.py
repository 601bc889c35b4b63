"""A batch of the decision log's stream that a reader gave up on (after its mapping's retries) is
described on the log stream dead-letter queue; once the cause is fixed, an operator invokes the
stream replay function, which hands the range to the reader that gave up: counted exactly once
however often it is replayed, published at least once, the message deleted. A range the stream no
longer holds is reported and kept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.lambda_runtime import LambdaContext
from infra.local.streams import log_stream, streams_client
from shared import wiring
from shared.adapters import aws as aws_clients
from shared.adapters import retry
from shared.adapters.clock import FixedClock
from tests.conftest import NOW, drain_stream
from tests.proof.test_log_stream import OK, counted, environment, refuse_entries_of, ten_decided

__all__ = ["environment"]  # autouse: the stream readers' environment


@pytest.fixture(autouse=True)
def replay_environment(aws: Any) -> Iterator[None]:
    import os

    os.environ.update(aws.environment("StreamReplayFunction"))
    wiring.reset()
    wiring.use_clock(FixedClock(NOW))
    retry.use_sleep(lambda _: None)
    yield
    retry.use_sleep(None)


def replay(payload: dict[str, Any] | None = None) -> dict[str, Any]:
    from functions.stream_replay.app import handler

    return handler(payload or {}, LambdaContext("StreamReplayFunction"))  # type: ignore[no-any-return]


def parked(stack: Any) -> list[dict[str, Any]]:
    """The messages on the log stream dead-letter queue, left visible (read by the test)."""
    sqs = boto3.client("sqs")
    url = stack.urls["LogStreamDeadLetterQueue"]
    found = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
    return list(found)


def failing_counts() -> dict[str, bool]:
    """DynamoDB refusing every counting transaction (throttled) until switched off."""
    failing = {"on": True}

    def refuse(params: dict[str, Any], **_: Any) -> None:
        if failing["on"]:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "TransactWriteItems")

    aws_clients.client("dynamodb").meta.events.register("provide-client-params.dynamodb.TransactWriteItems", refuse)
    return failing


def park(stack: Any, function: str) -> None:
    """Lambda's mapping of `function` tries its batch, retries it as often as the template allows,
    then describes it on the dead-letter queue and moves on."""
    poller = log_stream(stack).poller(function)
    for _ in range(poller.source.retries + 1):
        (answer,) = poller.drain(give_up_after_retries=True)
        assert answer["batchItemFailures"], answer
    assert poller.drain(give_up_after_retries=True) == []


def describe_parked_count_batch(stack: Any, first: str, last: str) -> None:
    """What Lambda puts on the log stream dead-letter queue when the count mapping gives up on the
    batch from sequence number `first` through `last` of the stream's shard."""
    stream = stack.get_att("DecisionLogTable", "StreamArn")
    (shard,) = streams_client().describe_stream(StreamArn=stream)["StreamDescription"]["Shards"]
    body = {
        "requestContext": {
            "functionArn": stack.get_att("LogCountFunction", "Arn"),
            "condition": "RetryAttemptsExhausted",
        },
        "DDBStreamBatchInfo": {
            "shardId": shard["ShardId"],
            "startSequenceNumber": first,
            "endSequenceNumber": last,
            "streamArn": stream,
        },
    }
    boto3.client("sqs").send_message(QueueUrl=stack.urls["LogStreamDeadLetterQueue"], MessageBody=json.dumps(body))


def test_a_count_batch_given_up_on_is_counted_once_by_the_replay_however_often_it_runs(aws: Any) -> None:
    # Given ten decisions whose count batch failed every retry (DynamoDB throttling the counts) and
    # was parked: published, but neither counted nor listed
    ten_decided(aws)
    failing = failing_counts()
    park(aws, "LogCountFunction")
    assert drain_stream(aws) == [OK]  # publishing, the other reader, went on
    assert counted() == {}
    (message,) = parked(aws)
    # When the cause is gone and an operator invokes the stream replay function
    failing["on"] = False
    answer = replay()
    # Then the batch was read back and counted, once, and its message deleted
    assert answer["replayed"] == 1 and answer["left"] == 0
    (batch,) = answer["batches"]
    assert (batch["result"], batch["records"]) == ("replayed", 10)
    assert batch["function"].endswith("LogCountFunction")
    assert counted()["total"] == 10
    assert parked(aws) == []
    # And its decisions are listed on their day's pages
    assert len(wiring.stats().days(NOW.date(), NOW.date())) == 1
    # When the same description is replayed again (a second operator, a message kept by a failure)
    boto3.client("sqs").send_message(QueueUrl=aws.urls["LogStreamDeadLetterQueue"], MessageBody=message["Body"])
    assert replay()["replayed"] == 1
    # Then nothing is counted twice: the batch's receipt says it was
    assert counted()["total"] == 10


def test_a_publishing_batch_given_up_on_is_announced_by_the_replay(aws: Any, outbound: Any) -> None:
    # Given ten decisions, EventBridge refusing the fourth one's entry past every retry, its batch parked
    records = ten_decided(aws)
    refused = records[3]["dynamodb"]["NewImage"]["decision_id"]["S"]
    refusing = refuse_entries_of(refused)
    park(aws, "LogStreamFunction")
    assert refused not in {e["detail"]["decision_id"] for e in outbound()}
    assert all(a == OK for a in drain_stream(aws))  # counting went on: all ten counted
    # When EventBridge takes it again and the operator replays
    refusing["on"] = False
    answer = replay({"limit": 5})
    # Then the rest of the batch, from the refused record, is announced, and nothing counted again
    assert answer["replayed"] == 1
    assert refused in {e["detail"]["decision_id"] for e in outbound()}
    assert counted()["total"] == 10
    assert parked(aws) == []


def test_a_range_the_stream_no_longer_holds_is_reported_and_its_message_kept(aws: Any) -> None:
    # Given a description of a batch whose records the stream does not hold (moto keeps records
    # forever, so a range past its end stands for one AWS trimmed after 24 hours)
    beyond = max(int(r["dynamodb"]["SequenceNumber"]) for r in ten_decided(aws)) + 100
    describe_parked_count_batch(aws, str(beyond), str(beyond + 10))
    # When the operator replays
    answer = replay()
    # Then it says the range is gone, replays nothing, and keeps the message for whoever recovers it
    assert answer["replayed"] == 0
    (batch,) = answer["batches"]
    assert batch["result"] == "gone"
    assert counted() == {}
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=aws.urls["LogStreamDeadLetterQueue"], AttributeNames=["All"]
    )["Attributes"]
    kept = int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])
    assert kept == 1  # hidden from the next replay for 5 minutes, then back


def test_a_range_read_short_of_its_last_record_is_not_replayed_and_its_message_kept(aws: Any) -> None:
    # Given a description of a batch whose first records the stream holds but whose last record it
    # does not hand out (the shard answers empty past the tenth: a read that ended early)
    records = ten_decided(aws)
    first = records[0]["dynamodb"]["SequenceNumber"]
    last = max(int(r["dynamodb"]["SequenceNumber"]) for r in records) + 100
    describe_parked_count_batch(aws, first, str(last))
    # When the operator replays
    answer = replay()
    # Then the part it could read is not replayed as the whole: nothing counted, the message kept
    (batch,) = answer["batches"]
    assert (answer["replayed"], batch["result"]) == (0, "failed"), batch
    assert "not " + str(last) in batch["detail"]
    assert counted() == {}
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=aws.urls["LogStreamDeadLetterQueue"], AttributeNames=["All"]
    )["Attributes"]
    assert (
        int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"]) == 1
    )


def test_a_malformed_payload_is_refused_by_field(aws: Any) -> None:
    # When the function is invoked with a limit out of range and a field it does not know
    answer = replay({"limit": 0, "queue": "x"})
    # Then it says what to send, field by field, and touches nothing
    assert answer["error"] == "INVALID_INPUT"
    assert {f["field"] for f in answer["fields"]} == {"limit", "queue"}


def test_a_parked_supersession_is_announced_and_its_schedule_dropped_by_the_replay(aws: Any, outbound: Any) -> None:
    from shared.adapters.scheduler import schedule_name
    from tests.integration.test_release import commit, decision
    from tests.integration.test_scheduling import schedules

    # Given a held survey, scheduled and announced, then superseded by a newer interaction's decision
    held = decision("evt-held")
    commit(held)
    assert all(a == OK for a in drain_stream(aws))
    assert list(schedules(aws)) == [schedule_name(held.decision_id)]
    newer = decision("evt-newer", decided_at=NOW + timedelta(minutes=10), supersedes=(held.decision_id,))
    commit(newer, NOW + timedelta(minutes=10))
    # And the batch of their records parked: EventBridge refused the cancellation past every retry
    refusing = refuse_entries_of(held.decision_id)
    park(aws, "LogStreamFunction")
    assert ("FollowUpCancelled", held.decision_id) not in {
        (e["detail-type"], e["detail"]["decision_id"]) for e in outbound()
    }
    # When EventBridge takes it again and the operator replays
    refusing["on"] = False
    assert replay()["replayed"] == 1
    # Then the cancellation is announced, and the superseded survey's schedule is gone (deleted again:
    # a schedule is deleted before its cancellation is announced, and deleting is idempotent)
    published = {(e["detail-type"], e["detail"]["decision_id"]) for e in outbound()}
    assert ("FollowUpCancelled", held.decision_id) in published
    assert list(schedules(aws)) == [schedule_name(newer.decision_id)]
