"""The request-counting benchmark at a tiny size: AWS requests per event stay flat whatever the history."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from bench.aws_path import DYNAMODB_WRITES, measure


def test_requests_per_event_are_flat_whatever_the_customers_history() -> None:
    # Given 50 events for customers with 1 past interaction and for customers with 20
    short, long = measure(events=50, histories=(1, 20))
    for result in (short, long):
        # Then every event is decided once, nothing fails, every decision is published
        assert result.events == 50
        assert result.failed_records == 0
        assert result.redelivered == 0
        assert result.approvals + result.suppressions == result.events
        # And each new event costs exactly one DynamoDB write (a put or a two-item transaction)
        assert result.calls("dynamodb", *DYNAMODB_WRITES) == result.events
        # And ledgers are read once per batch at most, decisions published in one PutEvents per batch
        assert result.calls("dynamodb", "BatchGetItem") <= result.batches
        assert result.calls("events", "PutEvents") <= result.batches
        assert result.other_requests == {}
        # And the counters were on the clients the product actually used
        assert result.clients_unchanged
    # And the history did its work: the long one holds more follow-ups than a fresh customer could
    assert long.ledger_entries_max > short.ledger_entries_max
    # And a long history costs the same requests per event as a short one
    assert long.batches == short.batches
    assert long.request_profile == short.request_profile
    assert long.requests_per_event == short.requests_per_event


def test_the_emulator_speed_ups_keep_moto_answers_and_rollbacks() -> None:
    from bench.emulator import emulator

    item: dict[str, Any] = {
        "customer_id": {"S": "c-1"},
        "version": {"N": "1"},
        "followups": {"L": [{"M": {"kind": {"S": "survey"}, "n": {"N": "2"}, "ok": {"BOOL": True}}}]},
        "tags": {"SS": ["a", "b"]},
        "gone": {"NULL": True},
        "blob": {"B": b"\x00\x01"},
    }
    with emulator() as bench:
        dynamodb, ledger_table = bench.dynamodb, bench.stack.names["LedgerTable"]
        log_table = bench.stack.names["DecisionLogTable"]
        dynamodb.put_item(TableName=ledger_table, Item=item)
        dynamodb.put_item(TableName=log_table, Item={"decision_id": {"S": "d-taken"}})
        # Answers are unchanged, binary included
        assert dynamodb.get_item(TableName=ledger_table, Key={"customer_id": {"S": "c-1"}})["Item"] == item
        # A cancelled transaction leaves the existing item as it was and creates nothing
        with pytest.raises(ClientError, match="TransactionCanceled"):
            dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": ledger_table,
                            "Key": {"customer_id": {"S": "c-1"}},
                            "UpdateExpression": "SET version = :v REMOVE followups",
                            "ExpressionAttributeValues": {":v": {"N": "2"}},
                        }
                    },
                    {"Put": {"TableName": ledger_table, "Item": {"customer_id": {"S": "c-new"}}}},
                    {
                        "Put": {
                            "TableName": log_table,
                            "Item": {"decision_id": {"S": "d-taken"}},
                            "ConditionExpression": "attribute_not_exists(decision_id)",
                        }
                    },
                ]
            )
        assert dynamodb.get_item(TableName=ledger_table, Key={"customer_id": {"S": "c-1"}})["Item"] == item
        assert "Item" not in dynamodb.get_item(TableName=ledger_table, Key={"customer_id": {"S": "c-new"}})
