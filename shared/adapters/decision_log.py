"""The decision (suppression) log table. This module alone spells its keys.

Keys serve the admin questions:
- by decision id: the table key `decision_id` (also the idempotency marker of the event);
- by customer and time: index `by-customer` (customer_id, decided_at);
- by day and reason: index `by-day-reason` (day_shard, reason_at). A day's writes are spread
  over DAY_SHARDS partitions so one busy day never makes a hot index partition; a day query
  reads every shard;
- the outbox is the table's stream (NEW_AND_OLD_IMAGES): every committed decision and every state
  change reaches the log stream function (shared.usecases.log_stream), which publishes and counts
  it; `decision_of` reads a stream image. No attribute, index or extra write serves it.

Each decision's entry also keeps the `fingerprint` of the event it decided, so a repeat of the
event_id with different content is told apart from a redelivery.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from shared.domain.decision import CancelReason, Decision, State, format_utc

KEY = "decision_id"
BY_CUSTOMER = "by-customer"
BY_DAY_REASON = "by-day-reason"
BY_DAY = "by-day"
DAY_SHARDS = 16
FINGERPRINT = "fingerprint"


def key(decision_id: str) -> dict[str, Any]:
    return {KEY: {"S": decision_id}}


# The first UTC day whose entries are all sharded by customer (day_shard below). Entries before it
# were spread by decision id, so a reader that wants one customer partition of such a day reads all
# of the day's shards and keeps its customers (shared.adapters.log_replay). Set it to the day after
# the deploy that brought customer sharding: later only costs reads, earlier would miss entries.
CUSTOMER_SHARDED_SINCE = date(2026, 12, 2)


def customer_shard(customer_id: str) -> int:
    """The customer's shard of every day: the simulation's partition p is shard p of each day."""
    return int(hashlib.sha256(customer_id.encode()).hexdigest(), 16) % DAY_SHARDS


def day_shard(decision: Decision) -> str:
    """Sharded by customer, not by decision: shard p of every day holds exactly the customers of
    partition p, so a simulation partition reads one shard a day and sees each of its customers whole.
    One customer's decisions of a day are few (caps and the ledger bound), so no shard runs hot."""
    return f"{decision.decided_at:%Y-%m-%d}#{customer_shard(decision.customer_id):02d}"


def to_item(decision: Decision, retention: timedelta) -> dict[str, Any]:
    decided_at = format_utc(decision.decided_at)
    return {
        KEY: {"S": decision.decision_id},
        "event_id": {"S": decision.event_id},
        "customer_id": {"S": decision.customer_id},
        "decided_at": {"S": decided_at},
        "action": {"S": str(decision.action)},
        "reason": {"S": str(decision.reason)},
        "day_shard": {"S": day_shard(decision)},
        "reason_at": {"S": f"{decision.reason}#{decided_at}"},
        "policy_version": {"N": str(decision.policy_version)},
        "expires_at": {"N": str(int((decision.decided_at + retention).timestamp()))},
        "doc": {"S": decision.model_dump_json()},
        **state_attributes(decision),
    }


# The lifecycle lives in its own top-level attributes (filterable, and updated in place by a
# release or a cancellation without rewriting `doc`); they win over the copy inside `doc`.
STATE, STATE_REASON, STATE_CHANGED_AT, SUPERSEDES = "state", "state_reason", "state_changed_at", "supersedes"


def state_attributes(decision: Decision) -> dict[str, Any]:
    item: dict[str, Any] = {
        STATE: {"S": str(decision.state)},
        STATE_CHANGED_AT: {"S": format_utc(decision.state_changed_at)},
    }
    if decision.state_reason is not None:
        item[STATE_REASON] = {"S": str(decision.state_reason)}
    if decision.supersedes:
        item[SUPERSEDES] = {"L": [{"S": d} for d in decision.supersedes]}
    return item


def state_update(
    decision_id: str, state: State, reason: CancelReason | None, at: datetime, *, expected: State = State.PENDING
) -> dict[str, Any]:
    """The Update (for a transaction: add TableName) moving one log entry to `state`, only if it is
    still `expected`: a second release or cancellation of the same decision fails its condition."""
    values: dict[str, Any] = {
        ":state": {"S": str(state)},
        ":at": {"S": format_utc(at)},
        ":expected": {"S": str(expected)},
    }
    update = "SET #state = :state, state_changed_at = :at"
    if reason is not None:
        update += ", state_reason = :reason"
        values[":reason"] = {"S": str(reason)}
    return {
        "Key": key(decision_id),
        "UpdateExpression": update,
        "ConditionExpression": "#state = :expected",
        "ExpressionAttributeNames": {"#state": STATE},
        "ExpressionAttributeValues": values,
    }


ADMIN = "admin"


def admin_record(
    customer_id: str, action: str, *, actor: str, at: datetime, details: dict[str, Any], retention: timedelta
) -> dict[str, Any]:
    """An admin action (an opt-out recorded, ...) in the customer's timeline. It has no day shard,
    so it stays out of the day indexes, and decision queries skip it by its record_type."""
    record = {
        "record_type": ADMIN,
        "action": action,
        "customer_id": customer_id,
        "actor": actor,
        "at": format_utc(at),
        "details": details,
    }
    return {
        KEY: {"S": f"adm_{uuid.uuid4().hex}"},
        "record_type": {"S": ADMIN},
        "customer_id": {"S": customer_id},
        "decided_at": {"S": format_utc(at)},
        "action": {"S": action},
        "expires_at": {"N": str(int((at + retention).timestamp()))},
        "doc": {"S": json.dumps(record, sort_keys=True)},
    }


def is_admin_record(item: dict[str, Any]) -> bool:
    return bool(item.get("record_type", {}).get("S") == ADMIN)


def from_item(item: dict[str, Any]) -> Decision:
    """The decision, with the lifecycle of the item's own attributes (a release or a cancellation
    updates those, not `doc`); entries logged before the lifecycle existed derive it."""
    doc = json.loads(item["doc"]["S"])
    for name in (STATE, STATE_REASON, STATE_CHANGED_AT):
        if name in item:
            doc[name] = item[name]["S"]
    return Decision.model_validate(doc)


def put_once(table: str, decision: Decision, retention: timedelta, fingerprint: str | None = None) -> dict[str, Any]:
    """Writes the decision unless one exists for the event: the log entry is the idempotency marker.
    It keeps the event's fingerprint; its stream record is what publishes and counts it."""
    item = to_item(decision, retention)
    if fingerprint is not None:
        item[FINGERPRINT] = {"S": fingerprint}
    return {
        "TableName": table,
        "Item": item,
        "ConditionExpression": f"attribute_not_exists({KEY})",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def fingerprint_of_item(item: dict[str, Any]) -> str | None:
    """None for entries written before fingerprints were kept."""
    value = item.get(FINGERPRINT, {}).get("S")
    return str(value) if value is not None else None


def decision_of(image: dict[str, Any] | None) -> Decision | None:
    """The decision a stream image (NewImage / OldImage, DynamoDB JSON) holds; None for the admin
    and outcome records that share the table, and for no image at all."""
    if not image or "record_type" in image or "doc" not in image:
        return None
    return from_item(image)


def day_queries(table: str, day: str) -> list[dict[str, Any]]:
    """One Query per shard of a day on the day index (a day is spread over DAY_SHARDS partitions)."""
    return [
        {
            "TableName": table,
            "IndexName": BY_DAY_REASON,
            "KeyConditionExpression": "day_shard = :shard",
            "ExpressionAttributeValues": {":shard": {"S": f"{day}#{shard:02d}"}},
        }
        for shard in range(DAY_SHARDS)
    ]
