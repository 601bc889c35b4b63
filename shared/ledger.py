"""The contact ledger table: one item per customer. This module alone spells its keys."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.contacts import ContactLedger, FollowUp
from shared.decision import Action, format_utc

KEY = "customer_id"


def key(customer_id: str) -> dict[str, Any]:
    return {KEY: {"S": customer_id}}


def from_item(customer_id: str, item: dict[str, Any] | None) -> ContactLedger:
    if not item:
        return ContactLedger(customer_id)
    followups = tuple(
        FollowUp(
            kind=Action(entry["M"]["kind"]["S"]),
            send_at=datetime.fromisoformat(entry["M"]["send_at"]["S"]),
            interaction_id=entry["M"]["interaction_id"]["S"],
            decision_id=entry["M"]["decision_id"]["S"],
        )
        for entry in item.get("followups", {}).get("L", [])
    )
    return ContactLedger(customer_id, int(item["version"]["N"]), followups)


def replace_if_unchanged(table: str, before: ContactLedger, after: ContactLedger, now: datetime) -> dict[str, Any]:
    """The conditional write that takes a slot: it succeeds only if nobody committed since `before`
    was read. This single condition is what keeps every cap under any concurrency."""
    last_send = max((f.send_at for f in after.followups), default=now)
    values: dict[str, Any] = {
        ":followups": {
            "L": [
                {
                    "M": {
                        "kind": {"S": str(f.kind)},
                        "send_at": {"S": format_utc(f.send_at)},
                        "interaction_id": {"S": f.interaction_id},
                        "decision_id": {"S": f.decision_id},
                    }
                }
                for f in after.followups
            ]
        },
        ":version": {"N": str(after.version)},
        ":updated_at": {"S": format_utc(now)},
        # Lets DynamoDB drop the ledger of a customer no window can count any more.
        ":expires_at": {"N": str(int((last_send + timedelta(days=400)).timestamp()))},
    }
    if before.version == 0:
        condition = f"attribute_not_exists({KEY})"
    else:
        condition = "version = :expected"
        values[":expected"] = {"N": str(before.version)}
    return {
        "TableName": table,
        "Key": key(after.customer_id),
        "UpdateExpression": "SET followups = :followups, version = :version, "
        "updated_at = :updated_at, expires_at = :expires_at",
        "ConditionExpression": condition,
        "ExpressionAttributeValues": values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
