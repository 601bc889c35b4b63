"""Shared fixtures: AWS is always moto, built from template.yaml, never a hand-written fake."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

# Set before any boto3 client exists: fake credentials, one region, no X-Ray, metrics namespace.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_NAMESPACE="FollowUpGovernorTest",
    POWERTOOLS_SERVICE_NAME="followup-governor",
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)


def _one_botocore_loader() -> None:
    """Every botocore session of the run shares one data loader. Each test starts a new moto, new
    boto3 sessions and new product clients (wiring.reset); a new session's own loader parsed the
    endpoint and service model JSON again (~0.2 s of CPU a test). The files never change during a
    run, and a Lambda process, like each session already, parses each one once."""
    import functools

    import botocore.loaders
    import botocore.session

    botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)  # type: ignore[attr-defined]


_one_botocore_loader()

# Every AWS call the product makes is recorded and held to infra/iam-usage.json (see the plugin).
pytest_plugins = ["tests.iam_plugin"]

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def detail(**overrides: Any) -> dict[str, Any]:
    """A valid InteractionClosed detail, closed an hour before NOW."""
    base: dict[str, Any] = {
        "event_id": "evt-1",
        "interaction_id": "int-1",
        "customer_id": "cust-1",
        "channel": "phone",
        "closed_at": (NOW - timedelta(hours=1)).isoformat(),
        "outcome": "resolved",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture(scope="session")
def provisioned() -> Any:
    """template.yaml provisioned on moto once per session, and moto's state right after it
    (tests/moto_snapshot.py): `with provisioned.fresh() as stack:` is a new moto as provisioning
    leaves it, at a fraction of provisioning's cost."""
    from tests.moto_snapshot import provision_once

    return provision_once()


@pytest.fixture(scope="session")
def _provisioned(provisioned: Any) -> tuple[Any, Any]:
    """`provisioned` as (stack, snapshot): inside a `mock_aws()`, `snapshot.restore()` gives moto
    as provisioning leaves it, and `stack` names its resources (`provisioned.fresh()` does both)."""
    return provisioned.stack, provisioned.snapshot


@pytest.fixture
def aws(provisioned: Any) -> Iterator[Any]:
    """A fresh moto with every data resource of template.yaml, and the environment of the decide
    function and of the log stream function (which `drain` and `outbound` run)."""
    from infra.local import emulator
    from shared import wiring

    emulator.install()  # the one emulator's speed-ups, as the local stack and the bench run it
    saved = dict(os.environ)
    # In-process moto: no endpoint. A local stack started earlier in this worker points every client
    # at its emulator (infra.local.stack.point_at); once that stack stops, the address refuses.
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with provisioned.fresh() as stack:
        os.environ.update(stack.environment("DecideFunction"))
        os.environ.update(stack.environment("LogStreamFunction"))
        wiring.reset()
        try:
            yield stack
        finally:
            os.environ.clear()
            os.environ.update(saved)
            wiring.reset()


def put_events(stack: Any, details: list[dict[str, Any]], source: str = "helpdesk.test") -> None:
    """Puts InteractionClosed events on the template's bus, as an upstream system does."""
    import boto3

    events = boto3.client("events")
    bus = stack.names["GovernorBus"]
    for start in range(0, len(details), 10):
        entries = [
            {"EventBusName": bus, "Source": source, "DetailType": "InteractionClosed", "Detail": json.dumps(d)}
            for d in details[start : start + 10]
        ]
        answer = events.put_events(Entries=entries)
        assert answer["FailedEntryCount"] == 0, answer


def drain(stack: Any, max_batches: int = 1000) -> list[dict[str, Any]]:
    """Feeds what the decide queue holds to the handler, ten at a time, acknowledging like
    Lambda's event source mapping, then what the decision log's stream holds to the log stream
    function (publish and count); returns each decide batch's response."""

    responses = []
    for _ in range(max_batches):
        messages, response = handle_batch(stack)
        if not messages:
            break
        responses.append(response)
    drain_stream(stack)
    return responses


def drain_stream(stack: Any) -> list[dict[str, Any]]:
    """One pass of the decision log's stream through the log stream function, as Lambda's event
    source mapping would run it (infra.local.streams): what the decide and release paths committed
    is published and counted. A batch that fails stops the pass; the next pass retries it from the
    record it reported. Returns each batch's answer."""
    from infra.local import streams

    return streams.drain(stack)


def handle_batch(stack: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One receive of up to ten messages, one handler call, one acknowledgement."""
    import boto3

    from functions.decide.app import handler
    from infra.lambda_runtime import LambdaContext, acknowledge, receive_batch, sqs_event

    sqs = boto3.client("sqs")
    url, arn = stack.urls["DecideQueue"], stack.arns["DecideQueue"]
    messages = receive_batch(sqs, url)
    if not messages:
        return [], {"batchItemFailures": []}
    response = handler(sqs_event(messages, arn), LambdaContext("decide"))
    acknowledge(sqs, url, messages, response)
    return messages, response


def end_visibility(stack: Any, messages: list[dict[str, Any]], response: dict[str, Any]) -> None:
    """Makes the failed messages of a batch visible at once, as if their visibility timeout passed."""
    import boto3

    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    for message in messages:
        if message["MessageId"] in failed:
            boto3.client("sqs").change_message_visibility(
                QueueUrl=stack.urls["DecideQueue"], ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )


def stream_records(stack: Any) -> list[dict[str, Any]]:
    """Every record the decision log's stream holds, in order, as GetRecords returns them."""
    from infra.local.streams import streams_client

    client = streams_client()
    arn = stack.get_att("DecisionLogTable", "StreamArn")
    found: list[dict[str, Any]] = []
    for shard in client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = client.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
        found += client.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"]
    return found


@pytest.fixture
def outbound(aws: Any) -> Any:
    """A queue subscribed to the governor's outbound events, as a survey tool would be."""
    import boto3

    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="outbound-observer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = aws.names["GovernorBus"]
    events.put_rule(
        Name="observe-decisions", EventBusName=bus, EventPattern=json.dumps({"source": ["followup.governor"]})
    )
    events.put_targets(Rule="observe-decisions", EventBusName=bus, Targets=[{"Id": "observer", "Arn": arn}])

    def read() -> list[dict[str, Any]]:
        drain_stream(aws)  # what was committed is published by the log stream function
        found: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    return read


def log_items(stack: Any) -> list[dict[str, Any]]:
    import boto3

    from shared.adapters import decision_log

    items = boto3.client("dynamodb").scan(TableName=stack.names["DecisionLogTable"], ConsistentRead=True)["Items"]
    return [decision_log.from_item(item).model_dump(mode="json") for item in items]


def ledger_of(stack: Any, customer_id: str) -> Any:
    import boto3

    from shared.adapters import ledger

    answer = boto3.client("dynamodb").get_item(
        TableName=stack.names["LedgerTable"], Key=ledger.key(customer_id), ConsistentRead=True
    )
    return ledger.from_item(customer_id, answer.get("Item"))


@pytest.fixture(scope="session")
def _openapi_checking() -> Iterator[list[str]]:
    from tests.openapi_check import checking_every_response

    with checking_every_response() as failures:
        yield failures


@pytest.fixture(autouse=True)
def api_responses_match_openapi(_openapi_checking: list[str]) -> Iterator[None]:
    """Every response an API handler gives in any test is one its OpenAPI document declares
    (tests/openapi_check.py); a test whose calls got an undocumented answer fails."""
    before = len(_openapi_checking)
    yield
    assert _openapi_checking[before:] == [], "responses the OpenAPI documents do not declare"
