"""The one emulator's speed-ups (infra/local/moto_speedups.py) change how much work moto does,
never what it answers: one scripted sequence of DynamoDB, EventBridge and SQS calls gives the same
answers and leaves the same state with and without them, and so do seeded writes that move log
entries between the keys of every index, queried as they go (the Query speed-up keeps a key index).
Cost is counted in work done (items deep-copied, clock reads per walk of a queue, values compared
per query), not in time."""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import re
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from infra.local import moto_speedups

Transcript = list[tuple[str, Any]]


def call(transcript: Transcript, label: str, action: Callable[[], Any]) -> Any:
    """Runs one call and records its answer, or its error code, message and payload."""
    try:
        answer = action()
    except ClientError as error:
        transcript.append((label, {"error": {k: v for k, v in error.response.items() if k != "ResponseMetadata"}}))
        return None
    transcript.append((label, {k: v for k, v in answer.items() if k != "ResponseMetadata"}))
    return answer


def scripted_calls(stack: Any) -> Transcript:
    dynamodb, sqs, events = boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("events")
    ledger, log = stack.names["LedgerTable"], stack.names["DecisionLogTable"]
    stats = stack.names["StatsTable"]
    queue, dlq = stack.urls["DecideQueue"], stack.urls["DecideDeadLetterQueue"]
    said: Transcript = []
    item = {
        "customer_id": {"S": "c-1"},
        "version": {"N": "1"},
        "followups": {"L": [{"M": {"kind": {"S": "survey"}, "n": {"N": "2"}, "ok": {"BOOL": True}}}]},
        "tags": {"SS": ["a", "b"]},
        "gone": {"NULL": True},
        "blob": {"B": b"\x00\x01"},
    }
    call(said, "put ledger", lambda: dynamodb.put_item(TableName=ledger, Item=item))
    for n in range(12):
        entry = {
            "decision_id": {"S": f"d-{n}"},
            "customer_id": {"S": f"c-{n % 3}"},
            "decided_at": {"S": f"2026-11-2{n % 4}T10:{n:02d}:00Z"},
            "reason_at": {"S": f"SURVEY_OK#{n:02d}"},
            "action": {"S": "survey" if n % 2 else "none"},
        }
        call(said, f"put log {n}", functools.partial(dynamodb.put_item, TableName=log, Item=entry))
    call(said, "get ledger", lambda: dynamodb.get_item(TableName=ledger, Key={"customer_id": {"S": "c-1"}}))
    # A transaction that passes: the ledger's version condition and a new log entry
    approve = [
        {
            "Update": {
                "TableName": ledger,
                "Key": {"customer_id": {"S": "c-1"}},
                "UpdateExpression": "SET version = :next",
                "ConditionExpression": "version = :read",
                "ExpressionAttributeValues": {":next": {"N": "2"}, ":read": {"N": "1"}},
            }
        },
        {
            "Put": {
                "TableName": log,
                "Item": {"decision_id": {"S": "d-new"}, "customer_id": {"S": "c-1"}},
                "ConditionExpression": "attribute_not_exists(decision_id)",
            }
        },
    ]
    call(said, "transaction passes", lambda: dynamodb.transact_write_items(TransactItems=approve))
    # A cancelled one: the first two items would change, the third's condition fails (ALL_OLD)
    cancelled = [
        {
            "Update": {
                "TableName": ledger,
                "Key": {"customer_id": {"S": "c-1"}},
                "UpdateExpression": "SET version = :v REMOVE followups",
                "ExpressionAttributeValues": {":v": {"N": "9"}},
            }
        },
        {"Put": {"TableName": ledger, "Item": {"customer_id": {"S": "c-new"}}}},
        {"Put": {"TableName": stats, "Item": {"day": {"S": "2026-11-23"}, "shard": {"S": "7"}}}},
        {
            "Put": {
                "TableName": log,
                "Item": {"decision_id": {"S": "d-3"}},
                "ConditionExpression": "attribute_not_exists(decision_id)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        },
    ]
    call(said, "transaction cancelled", lambda: dynamodb.transact_write_items(TransactItems=cancelled))
    twice = [{"Put": {"TableName": ledger, "Item": {"customer_id": {"S": "c-2"}}}}] * 2
    call(said, "one item twice", lambda: dynamodb.transact_write_items(TransactItems=twice))
    call(
        said,
        "conditional put fails, ALL_OLD",
        lambda: dynamodb.put_item(
            TableName=ledger,
            Item={"customer_id": {"S": "c-1"}},
            ConditionExpression="version = :v",
            ExpressionAttributeValues={":v": {"N": "1"}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
    )
    call(
        said,
        "update ALL_NEW",
        lambda: dynamodb.update_item(
            TableName=ledger,
            Key={"customer_id": {"S": "c-1"}},
            UpdateExpression="ADD hits :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="ALL_NEW",
        ),
    )
    call(
        said,
        "batch get",
        lambda: dynamodb.batch_get_item(
            RequestItems={ledger: {"Keys": [{"customer_id": {"S": c}} for c in ("c-1", "c-new", "c-2")]}}
        ),
    )
    query = {"TableName": log, "IndexName": "by-customer", "KeyConditionExpression": "customer_id = :c"}
    call(said, "GSI query", lambda: dynamodb.query(**query, ExpressionAttributeValues={":c": {"S": "c-1"}}))
    page = call(
        said, "GSI page 1", lambda: dynamodb.query(**query, ExpressionAttributeValues={":c": {"S": "c-0"}}, Limit=2)
    )
    call(
        said,
        "GSI page 2",
        lambda: dynamodb.query(
            **query,
            ExpressionAttributeValues={":c": {"S": "c-0"}},
            Limit=2,
            ExclusiveStartKey=page["LastEvaluatedKey"],
        ),
    )
    call(
        said,
        "GSI query filtered, newest first",
        lambda: dynamodb.query(
            TableName=log,
            IndexName="by-customer",
            KeyConditionExpression="customer_id = :c",
            FilterExpression="#a = :a",
            ExpressionAttributeNames={"#a": "action"},
            ExpressionAttributeValues={":c": {"S": "c-1"}, ":a": {"S": "survey"}},
            ScanIndexForward=False,
        ),
    )
    for table in (ledger, log, stats):
        call(said, f"scan {table}", functools.partial(dynamodb.scan, TableName=table, ConsistentRead=True))
        description = call(said, f"describe {table}", functools.partial(dynamodb.describe_table, TableName=table))
        said[-1] = (f"count {table}", description["Table"]["ItemCount"])

    # SQS: through the bus and directly; receive, fail, change visibility, delete, redrive to the DLQ
    detail = {"event_id": "e-1", "customer_id": "c-1"}
    closed: dict[str, Any] = {
        "EventBusName": stack.names["GovernorBus"],
        "Source": "t",
        "DetailType": "InteractionClosed",
    }
    call(said, "put events", lambda: events.put_events(Entries=[{**closed, "Detail": json.dumps(detail)}]))
    call(said, "send", lambda: sqs.send_message(QueueUrl=queue, MessageBody="two"))
    batch = [{"Id": f"m{n}", "MessageBody": f"batch-{n}", "DelaySeconds": 0} for n in range(3)]
    call(said, "send batch", lambda: sqs.send_message_batch(QueueUrl=queue, Entries=batch))
    counts = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    call(said, "depth", lambda: sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=counts))
    got = call(
        said,
        "receive 2",
        lambda: sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=2, AttributeNames=["All"], VisibilityTimeout=30
        ),
    )
    call(said, "depth in flight", lambda: sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=counts))
    first, second = got["Messages"]
    call(said, "delete", lambda: sqs.delete_message(QueueUrl=queue, ReceiptHandle=first["ReceiptHandle"]))
    call(said, "delete again", lambda: sqs.delete_message(QueueUrl=queue, ReceiptHandle=first["ReceiptHandle"]))
    call(said, "delete unknown", lambda: sqs.delete_message(QueueUrl=queue, ReceiptHandle="not-a-handle"))
    call(
        said,
        "visible again",
        lambda: sqs.change_message_visibility(
            QueueUrl=queue, ReceiptHandle=second["ReceiptHandle"], VisibilityTimeout=0
        ),
    )
    for attempt in range(7):  # past maxReceiveCount (5): SQS moves them to the DLQ
        call(
            said,
            f"receive all {attempt}",
            lambda: sqs.receive_message(
                QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=0
            ),
        )
    call(said, "depth after redrive", lambda: sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"]))
    call(
        said,
        "dead letters",
        lambda: sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=30),
    )
    call(said, "dlq depth", lambda: sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=counts))
    return said


VOLATILE = re.compile(r"Timestamp$|^(MessageId|ReceiptHandle|SequenceNumber|EventId|id|time)$")


def normalized(transcript: Transcript) -> Transcript:
    """Random ids become their order of first appearance, times become a mark: the rest must be equal."""
    seen: dict[str, str] = {}

    def walk(node: Any, key: str = "") -> Any:
        if isinstance(node, dict):
            if "MD5OfBody" in node:  # a message: its body may hold random ids, its digest must match it
                node = {**node, "MD5OfBody": hashlib.md5(node["Body"].encode()).hexdigest() == node["MD5OfBody"]}
            return {k: walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            walked = [walk(v, key) for v in node]
            return (
                sorted(walked, key=lambda v: json.dumps(v, default=repr))
                if key in ("Messages", "Items", "Responses")
                else walked
            )
        if key == "Body" and isinstance(node, str) and node.startswith("{"):
            return walk(json.loads(node), "Body")
        if VOLATILE.search(key) and isinstance(node, str | int):
            return (
                "<time>"
                if key.endswith("Timestamp") or key == "time"
                else seen.setdefault(str(node), f"<id {len(seen)}>")
            )
        return node

    return [(label, walk(answer)) for label, answer in transcript]


def run_script(provisioned: tuple[Any, Any]) -> Transcript:
    """The script on a fresh copy of the provisioned template (tests/conftest.py's `_provisioned`)."""
    stack, snapshot = provisioned
    with mock_aws():
        snapshot.restore()
        return normalized(scripted_calls(stack))


def test_the_speedups_leave_every_moto_answer_unchanged(_provisioned: tuple[Any, Any]) -> None:
    # Given the same scripted calls, run on moto as released and on the one emulator
    with moto_speedups.removed():
        assert not moto_speedups.installed()
        released = run_script(_provisioned)
    moto_speedups.install()
    sped_up = run_script(_provisioned)
    # Then every answer (items, errors with their old items, pages, messages, counts) is the same
    assert [label for label, _ in sped_up] == [label for label, _ in released]
    for (label, theirs), (_, ours) in zip(released, sped_up, strict=True):
        assert ours == theirs, label
    # And the script did reach the cases that matter
    answers = dict(sped_up)
    assert answers["transaction cancelled"]["error"]["CancellationReasons"][3]["Item"]["decision_id"] == {"S": "d-3"}
    assert answers["one item twice"]["error"]["Error"]["Code"] == "ValidationException"
    assert answers["conditional put fails, ALL_OLD"]["error"]["Item"]["version"] == {"N": "2"}
    assert answers["delete unknown"]["error"]["Error"]["Code"] == "ReceiptHandleIsInvalid"
    assert len(answers["dead letters"]["Messages"]) == 4
    assert answers["GSI page 2"]["Items"]


def test_a_cancelled_transaction_rolls_back_every_item_it_touched(aws: Any) -> None:
    # Given the tests' emulator, with a ledger item holding follow-ups
    dynamodb, ledger = boto3.client("dynamodb"), aws.names["LedgerTable"]
    item = {"customer_id": {"S": "c-1"}, "version": {"N": "3"}, "followups": {"L": [{"S": "x"}]}}
    dynamodb.put_item(TableName=ledger, Item=item)
    dynamodb.put_item(TableName=aws.names["DecisionLogTable"], Item={"decision_id": {"S": "taken"}})
    # When a transaction changes it and creates another, then fails on its last item
    with pytest.raises(ClientError, match="TransactionCanceled"):
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": ledger,
                        "Key": {"customer_id": {"S": "c-1"}},
                        "UpdateExpression": "SET version = :v REMOVE followups",
                        "ExpressionAttributeValues": {":v": {"N": "4"}},
                    }
                },
                {"Put": {"TableName": ledger, "Item": {"customer_id": {"S": "c-2"}}}},
                {
                    "Put": {
                        "TableName": aws.names["DecisionLogTable"],
                        "Item": {"decision_id": {"S": "taken"}},
                        "ConditionExpression": "attribute_not_exists(decision_id)",
                    }
                },
            ]
        )
    # Then the first item is as it was and the second does not exist
    assert dynamodb.get_item(TableName=ledger, Key={"customer_id": {"S": "c-1"}})["Item"] == item
    assert "Item" not in dynamodb.get_item(TableName=ledger, Key={"customer_id": {"S": "c-2"}})
    assert dynamodb.scan(TableName=ledger)["Count"] == 1


@pytest.fixture
def deep_copies(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts the DynamoDB items moto deep-copies (through moto's own Item.__deepcopy__)."""
    from moto.dynamodb.models.dynamo_type import Item

    counted = {"items": 0}
    real = Item.__deepcopy__

    def counting(self: Any, memo: dict[int, Any]) -> Any:
        counted["items"] += 1
        return real(self, memo)

    monkeypatch.setattr(Item, "__deepcopy__", counting)
    return counted


def approve_against_a_big_log(stack: Any, logged: int, deep_copies: dict[str, int], decision: str) -> int:
    dynamodb, log = boto3.client("dynamodb"), stack.names["DecisionLogTable"]
    for start in range(0, logged, 25):
        dynamodb.batch_write_item(
            RequestItems={
                log: [
                    {"PutRequest": {"Item": {"decision_id": {"S": f"{decision}-old-{n}"}}}}
                    for n in range(start, min(logged, start + 25))
                ]
            }
        )
    deep_copies["items"] = 0
    dynamodb.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": stack.names["LedgerTable"],
                    "Key": {"customer_id": {"S": "c-1"}},
                    "UpdateExpression": "SET version = :v",
                    "ExpressionAttributeValues": {":v": {"N": "1"}},
                }
            },
            {"Put": {"TableName": log, "Item": {"decision_id": {"S": decision}}}},
        ]
    )
    return deep_copies["items"]


def test_a_transaction_copies_only_the_items_it_names_whatever_the_table_holds(
    aws: Any, deep_copies: dict[str, int]
) -> None:
    # Given the tests' emulator with a customer's ledger, and 300, then 600 decisions logged
    boto3.client("dynamodb").put_item(TableName=aws.names["LedgerTable"], Item={"customer_id": {"S": "c-1"}})
    # When one approval (a two-item transaction) is committed against each
    small = approve_against_a_big_log(aws, 300, deep_copies, "d-a")
    big = approve_against_a_big_log(aws, 300, deep_copies, "d-b")
    # Then it deep-copies at most the two items it names, however many the table holds
    assert small == big
    assert small <= 2
    # While moto as released copies the whole log table on every transaction
    with moto_speedups.removed():
        assert approve_against_a_big_log(aws, 100, deep_copies, "d-c") > 700


@pytest.fixture
def clock_reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts moto's SQS clock reads: moto reads the clock for each message it looks at."""
    models: Any = importlib.import_module("moto.sqs.models")
    counted = {"reads": 0}
    real = models.unix_time_millis

    def counting(*args: Any) -> float:
        counted["reads"] += 1
        return float(real(*args))

    monkeypatch.setattr(models, "unix_time_millis", counting)
    return counted


def reads_per_send_and_receive(stack: Any, depth: int, clock_reads: dict[str, int]) -> int:
    sqs, queue = boto3.client("sqs"), stack.urls["DecideQueue"]
    for start in range(len_of(stack), depth, 10):
        sqs.send_message_batch(
            QueueUrl=queue, Entries=[{"Id": str(n), "MessageBody": "x"} for n in range(min(10, depth - start))]
        )
    clock_reads["reads"] = 0
    sqs.send_message(QueueUrl=queue, MessageBody="one more")
    message = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=30)["Messages"][0]
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return clock_reads["reads"]


def len_of(stack: Any) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=stack.urls["DecideQueue"], AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_sending_and_receiving_do_not_walk_the_queue_more_as_it_grows(aws: Any, clock_reads: dict[str, int]) -> None:
    # Given the tests' emulator's decide queue holding 100, then 1,000 messages
    # When one message is sent, ten received and one deleted at each depth
    shallow = reads_per_send_and_receive(aws, 100, clock_reads)
    deep = reads_per_send_and_receive(aws, 1000, clock_reads)
    # Then the clock is read as often at either depth (once per walk, not once per message)
    assert deep == shallow
    assert shallow < 50
    # While moto as released reads it for every message it holds, several times per call
    with moto_speedups.removed():
        assert reads_per_send_and_receive(aws, 1000, clock_reads) > 10 * 1000


def test_the_speedups_refuse_to_install_on_another_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a moto other than the pinned one
    with moto_speedups.removed():
        monkeypatch.setattr("importlib.metadata.version", lambda name: "5.2.6")
        # When the emulator's speed-ups are installed, then they refuse with a clear message, and install nothing
        with pytest.raises(moto_speedups.UnsupportedMoto, match=r"moto 5\.2\.6 is installed.*moto==5\.2\.5"):
            moto_speedups.install()
        assert not moto_speedups.installed()
        monkeypatch.undo()


def queries_through_moving_writes(stack: Any, seed: int = 12, steps: int = 80) -> Transcript:
    """Seeded writes that move log entries between index keys (puts that replace, updates that set
    or remove a key attribute, deletes, batch writes, cancelled transactions, PartiQL), each few
    followed by queries on every index and on a table's own key, with pages, filters and both orders."""
    import random

    dynamodb, rng = boto3.client("dynamodb"), random.Random(seed)
    log, stats = stack.names["DecisionLogTable"], stack.names["StatsTable"]
    customers = [f"c-{n}" for n in range(4)]
    said: Transcript = []

    def ask(label: str, method: Callable[..., Any], **request: Any) -> Any:
        return call(said, label, functools.partial(method, **request))

    def entry(n: int) -> dict[str, Any]:
        found = {
            "decision_id": {"S": f"d-{n}"},
            "decided_at": {"S": f"2026-11-2{rng.randrange(4)}T10:{rng.randrange(60):02d}:00Z"},
            "action": {"S": rng.choice(["survey", "callback", "none"])},
        }
        if rng.random() < 0.8:  # the rest are out of the (sparse) index
            found |= {"customer_id": {"S": rng.choice(customers)}, "reason_at": {"S": f"R{rng.randrange(3)}#{n:03d}"}}
        return found

    def ask_everything(step: int) -> None:
        for customer in customers:
            query = {
                "TableName": log,
                "IndexName": "by-customer",
                "KeyConditionExpression": "customer_id = :c",
                "ExpressionAttributeValues": {":c": {"S": customer}},
                "Limit": 3,
            }
            first = ask(f"{step} by-customer {customer}", dynamodb.query, **query)
            if first and "LastEvaluatedKey" in first:
                start = first["LastEvaluatedKey"]
                ask(f"{step} page 2 {customer}", dynamodb.query, **query, ExclusiveStartKey=start)
        customer = rng.choice(customers)
        ask(
            f"{step} by-customer filtered",
            dynamodb.query,
            TableName=log,
            IndexName="by-customer",
            KeyConditionExpression="customer_id = :c",
            FilterExpression="#a <> :none",
            ExpressionAttributeNames={"#a": "action"},
            ExpressionAttributeValues={":c": {"S": customer}, ":none": {"S": "none"}},
            ScanIndexForward=False,
        )
        ask(
            f"{step} by-customer after",
            dynamodb.query,
            TableName=log,
            IndexName="by-customer",
            KeyConditionExpression="customer_id = :c AND decided_at > :t",
            ExpressionAttributeValues={":c": {"S": customer}, ":t": {"S": "2026-11-21"}},
            ScanIndexForward=False,
        )
        ask(
            f"{step} stats day",
            dynamodb.query,
            TableName=stats,
            KeyConditionExpression="#d = :d",
            ExpressionAttributeNames={"#d": "day"},
            ExpressionAttributeValues={":d": {"S": f"2026-11-2{rng.randrange(3)}"}},
        )

    for step in range(steps):
        n = rng.randrange(40)
        key = {"decision_id": {"S": f"d-{n}"}}
        kind = rng.choice(["put", "put", "move", "unset", "delete", "batch", "cancelled", "stats", "partiql"])
        if kind == "put":
            ask(f"{step} put", dynamodb.put_item, TableName=log, Item=entry(n))
        elif kind == "move":
            key_name, to = rng.choice([("customer_id", rng.choice(customers)), ("decided_at", "2026-11-22T09:00:00Z")])
            ask(
                f"{step} move",
                dynamodb.update_item,
                TableName=log,
                Key=key,
                UpdateExpression="SET #k = :v, reason_at = if_not_exists(reason_at, :r)",
                ExpressionAttributeNames={"#k": key_name},
                ExpressionAttributeValues={":v": {"S": to}, ":r": {"S": f"R2#{n:03d}"}},
            )
        elif kind == "unset":
            ask(f"{step} unset", dynamodb.update_item, TableName=log, Key=key, UpdateExpression="REMOVE customer_id")
        elif kind == "delete":
            ask(f"{step} delete", dynamodb.delete_item, TableName=log, Key=key, ReturnValues="ALL_OLD")
        elif kind == "batch":
            gone = {"DeleteRequest": {"Key": {"decision_id": {"S": f"d-{(n + 7) % 40}"}}}}
            writes = [{"PutRequest": {"Item": entry(n + k)}} for k in range(3)] + [gone]
            ask(f"{step} batch", dynamodb.batch_write_item, RequestItems={log: writes})
        elif kind == "cancelled":
            never = {"day": {"S": "never"}, "shard": {"S": "0"}}
            moved = {":c": {"S": "c-moved"}}
            items = [
                {
                    "Update": {
                        "TableName": log,
                        "Key": key,
                        "UpdateExpression": "SET customer_id = :c",
                        "ExpressionAttributeValues": moved,
                    }
                },
                {"Put": {"TableName": log, "Item": entry(n + 50)}},
                {"Delete": {"TableName": log, "Key": {"decision_id": {"S": f"d-{(n + 1) % 40}"}}}},
                {
                    "ConditionCheck": {
                        "TableName": stats,
                        "Key": never,
                        "ConditionExpression": "attribute_exists(#s)",
                        "ExpressionAttributeNames": {"#s": "shard"},
                    }
                },
            ]
            ask(f"{step} cancelled", dynamodb.transact_write_items, TransactItems=items)
        elif kind == "stats":
            day = {"day": {"S": f"2026-11-2{rng.randrange(3)}"}, "shard": {"S": str(rng.randrange(3))}}
            ask(f"{step} stats", dynamodb.put_item, TableName=stats, Item={**day, "total": {"N": str(n)}})
        else:
            statement = f"UPDATE \"{log}\" SET customer_id='{rng.choice(customers)}' WHERE decision_id='d-{n}'"
            ask(f"{step} partiql", dynamodb.execute_statement, Statement=statement)
        if step % 4 == 3:
            ask_everything(step)
    return said


def test_queries_answer_the_same_while_writes_move_items_between_keys(_provisioned: tuple[Any, Any]) -> None:
    # Given seeded writes that move log entries between the keys of every index, queried as they go
    stack, snapshot = _provisioned

    def run() -> Transcript:
        with mock_aws():
            snapshot.restore()
            return normalized(queries_through_moving_writes(stack))

    with moto_speedups.removed():
        released = run()
    moto_speedups.install()
    # When they run on moto as released and on the one emulator (which answers from its key index)
    sped_up = run()
    # Then every answer is the same: items, their order, pages, counts, errors
    assert [label for label, _ in sped_up] == [label for label, _ in released]
    for (label, theirs), (_, ours) in zip(released, sped_up, strict=True):
        assert ours == theirs, label
    # And the script reached the cases that matter: entries found, moved, cancelled, paged
    answers = [answer for _, answer in sped_up]
    assert sum(1 for label, a in sped_up if "by-customer" in label and a.get("Count")) > 50
    assert any("page 2" in label for label, _ in sped_up)
    assert any(a.get("error", {}).get("Error", {}).get("Code") == "TransactionCanceledException" for a in answers)
    assert any("partiql" in label and "error" not in a for label, a in sped_up)


@pytest.fixture
def comparisons(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts moto's DynamoDB value comparisons (sorting and matching keys)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    counted = {"n": 0}
    for name in ("__eq__", "__ne__", "__lt__"):
        real = getattr(DynamoType, name)

        def counting(self: Any, other: Any, real: Any = real) -> Any:
            counted["n"] += 1
            return real(self, other)

        monkeypatch.setattr(DynamoType, name, counting)
    return counted


def customer_query_against_a_log_of(stack: Any, logged: int, comparisons: dict[str, int]) -> int:
    dynamodb, log = boto3.client("dynamodb"), stack.names["DecisionLogTable"]
    for start in range(len_of_log(stack), logged, 25):
        dynamodb.batch_write_item(
            RequestItems={
                log: [
                    {
                        "PutRequest": {
                            "Item": {
                                "decision_id": {"S": f"d-{n}"},
                                "customer_id": {"S": f"c-{n}"},
                                "decided_at": {"S": f"2026-11-23T{n % 24:02d}:00:00Z"},
                            }
                        }
                    }
                    for n in range(start, min(logged, start + 25))
                ]
            }
        )
    comparisons["n"] = 0
    answer = dynamodb.query(
        TableName=log,
        IndexName="by-customer",
        KeyConditionExpression="customer_id = :c",
        ExpressionAttributeValues={":c": {"S": "c-7"}},
    )
    assert [item["decision_id"]["S"] for item in answer["Items"]] == ["d-7"]
    return comparisons["n"]


def len_of_log(stack: Any) -> int:
    return int(boto3.client("dynamodb").scan(TableName=stack.names["DecisionLogTable"], Select="COUNT")["Count"])


def test_a_query_on_an_index_looks_at_its_key_only_whatever_the_table_holds(
    aws: Any, comparisons: dict[str, int]
) -> None:
    # Given the tests' emulator's decision log, queried once by customer (the index is built then)
    customer_query_against_a_log_of(aws, 100, comparisons)
    # When one customer's entries are queried with 300, then 900 entries logged
    small = customer_query_against_a_log_of(aws, 300, comparisons)
    big = customer_query_against_a_log_of(aws, 900, comparisons)
    # Then the query compares as many values either way (those of the key it asks for)
    assert big == small
    assert small < 50
    # While moto as released sorts and tests every item of the table on each query (more than one comparison each)
    with moto_speedups.removed():
        assert customer_query_against_a_log_of(aws, 900, comparisons) > 900
