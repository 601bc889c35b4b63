"""The `aws` fixture hands each test a copy of moto as provisioning template.yaml leaves it
(tests/moto_snapshot.py): these prove the copy is that, and that no test sees another's writes."""

from __future__ import annotations

from typing import Any

import boto3
from moto import mock_aws

from infra.local.provision import provision

# What differs between two provisionings by nature: times, and random ids (the secret's ARN suffix,
# the KMS key moto makes for encrypted tables, a stream's label).
VOLATILE = {
    "CreationDateTime", "CreatedTimestamp", "LastModifiedTimestamp", "creationDate", "CreationDate", "CreatedDate",
    "CreationTime", "LastModifiedTime", "LastModificationDate", "LastChangedDate", "LastAccessedDate",
    "LastUpdateToPayPerRequestDateTime", "EarliestRestorableDateTime", "LatestRestorableDateTime",
    "LatestStreamLabel", "LatestStreamArn", "StreamArn", "ARN", "KMSMasterKeyArn", "VersionIdsToStages",
    "ResponseMetadata",
}  # fmt: skip


def stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def describe(stack: Any) -> dict[str, Any]:
    """Everything moto answers about each provisioned resource, by logical id."""
    dynamodb, sqs, events = boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("events")
    found: dict[str, Any] = {}
    for logical, kind in sorted(stack.types.items()):
        if kind == "AWS::DynamoDB::Table":
            name = stack.names[logical]
            found[logical] = [
                dynamodb.describe_table(TableName=name)["Table"],
                dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"],
                dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"],
                dynamodb.scan(TableName=name)["Items"],
            ]
        elif kind == "AWS::SQS::Queue":
            url = stack.urls[logical]
            found[logical] = [
                url,
                sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"],
                sqs.receive_message(QueueUrl=url).get("Messages", []),
            ]
        elif kind == "AWS::Events::EventBus":
            found[logical] = events.describe_event_bus(Name=stack.names[logical])
        elif kind == "AWS::Events::Rule":
            name = stack.names[logical]
            bus = next(
                b["Name"]
                for b in events.list_event_buses()["EventBuses"]
                if name in [r["Name"] for r in events.list_rules(EventBusName=b["Name"])["Rules"]]
            )
            found[logical] = [
                events.describe_rule(Name=name, EventBusName=bus),
                events.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"],
            ]
        elif kind == "AWS::SecretsManager::Secret":
            found[logical] = boto3.client("secretsmanager").describe_secret(SecretId=stack.names[logical])
        elif kind == "AWS::Scheduler::ScheduleGroup":
            scheduler = boto3.client("scheduler")
            found[logical] = [
                scheduler.get_schedule_group(Name=stack.names[logical]),
                scheduler.list_schedules(GroupName=stack.names[logical])["Schedules"],
            ]
        elif kind == "AWS::StepFunctions::StateMachine":
            found[logical] = boto3.client("stepfunctions").describe_state_machine(stateMachineArn=stack.arns[logical])
        else:
            raise AssertionError(f"teach this test to describe {kind}")
    described: dict[str, Any] = stable(found)
    return described


def test_each_test_starts_from_what_provisioning_template_yaml_creates(provisioned: Any) -> None:
    # Given template.yaml provisioned on a fresh moto, as the fixture did before its snapshot
    with mock_aws():
        fresh = provision(boto3.Session(region_name="us-east-1"))
        expected = describe(fresh)
    # When a test gets the fixture's copy instead
    with provisioned.fresh() as stack:
        copied = describe(stack)
    # Then moto answers the same about every resource, which are all there
    assert set(copied) == set(fresh.types) == set(stack.types)
    assert copied == expected
    secret = "AWS::SecretsManager::Secret"
    assert {k: v for k, v in fresh.names.items() if fresh.types[k] != secret} == {
        k: v for k, v in stack.names.items() if stack.types[k] != secret
    }


def test_no_test_sees_what_another_wrote(provisioned: Any) -> None:
    # Given a test that writes an item, sends a message and adds a queue
    with provisioned.fresh() as stack:
        table, queue = stack.names["StatsTable"], stack.urls["DecideQueue"]
        dynamodb, sqs = boto3.client("dynamodb"), boto3.client("sqs")
        key = {k["AttributeName"]: {"S": "x"} for k in dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]}
        dynamodb.put_item(TableName=table, Item=key)
        sqs.send_message(QueueUrl=queue, MessageBody="left over")
        sqs.create_queue(QueueName="left-over")
        assert dynamodb.scan(TableName=table)["Count"] == 1
    # When the next test gets its copy
    with provisioned.fresh():
        dynamodb, sqs = boto3.client("dynamodb"), boto3.client("sqs")
        # Then none of it is there
        assert dynamodb.scan(TableName=table)["Count"] == 0
        assert "Messages" not in sqs.receive_message(QueueUrl=queue)
        assert not any(u.endswith("/left-over") for u in sqs.list_queues().get("QueueUrls", []))
