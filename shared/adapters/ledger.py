"""The contact ledger table: one item per customer. This module alone spells its keys."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.domain.contacts import PENDING, RELEASED, ContactLedger, FollowUp, OptOut
from shared.domain.decision import Action, format_utc

KEY = "customer_id"


def key(customer_id: str) -> dict[str, Any]:
    return {KEY: {"S": customer_id}}


def from_item(customer_id: str, item: dict[str, Any] | None) -> ContactLedger:
    if not item:
        return ContactLedger(customer_id)
    followups = tuple(followup_from(entry["M"]) for entry in item.get("followups", {}).get("L", []))
    opt_outs = tuple(
        OptOut(kind, entry["M"]["source"]["S"], datetime.fromisoformat(entry["M"]["at"]["S"]))
        for kind, entry in sorted(item.get("opt_outs", {}).get("M", {}).items())
    )
    return ContactLedger(customer_id, int(item["version"]["N"]), followups, opt_outs)


# Lifecycle and outcome attributes of a follow-up, with short names (a ledger holds hundreds of
# follow-ups in one item), written only when they say something: entries stored before the
# lifecycle existed read back as released, with no outcome.
_STATE, _CLOSED_AT, _RESPONDED_AT, _REACHED, _RESOLVED, _FAILED = "st", "ca", "ra", "rc", "rs", "df"


def _time(entry: dict[str, Any], name: str) -> datetime | None:
    value = entry.get(name)
    return datetime.fromisoformat(value["S"]) if value else None


def _flag(entry: dict[str, Any], name: str) -> bool | None:
    value = entry.get(name)
    return bool(value["BOOL"]) if value else None


def followup_from(entry: dict[str, Any]) -> FollowUp:
    return FollowUp(
        kind=Action(entry["kind"]["S"]),
        send_at=datetime.fromisoformat(entry["send_at"]["S"]),
        interaction_id=entry["interaction_id"]["S"],
        decision_id=entry["decision_id"]["S"],
        state=PENDING if entry.get(_STATE, {}).get("S") == "p" else RELEASED,
        closed_at=_time(entry, _CLOSED_AT),
        responded_at=_time(entry, _RESPONDED_AT),
        reached=_flag(entry, _REACHED),
        resolved=_flag(entry, _RESOLVED),
        delivery_failed=bool(_flag(entry, _FAILED)),
    )


def followup_value(f: FollowUp) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "kind": {"S": str(f.kind)},
        "send_at": {"S": format_utc(f.send_at)},
        "interaction_id": {"S": f.interaction_id},
        "decision_id": {"S": f.decision_id},
    }
    if f.pending:
        entry[_STATE] = {"S": "p"}
    if f.closed_at is not None:
        entry[_CLOSED_AT] = {"S": format_utc(f.closed_at)}
    if f.responded_at is not None:
        entry[_RESPONDED_AT] = {"S": format_utc(f.responded_at)}
    if f.reached is not None:
        entry[_REACHED] = {"BOOL": f.reached}
    if f.resolved is not None:
        entry[_RESOLVED] = {"BOOL": f.resolved}
    if f.delivery_failed:
        entry[_FAILED] = {"BOOL": True}
    return {"M": entry}


def _opt_outs_value(opt_outs: tuple[OptOut, ...]) -> dict[str, Any]:
    return {"M": {o.kind: {"M": {"source": {"S": o.source}, "at": {"S": format_utc(o.at)}}} for o in opt_outs}}


def set_opt_outs(table: str, before: ContactLedger, opt_outs: tuple[OptOut, ...], now: datetime) -> dict[str, Any]:
    """Replaces a customer's opt-outs if nobody changed the ledger since `before` was read (an
    admin's change or a decider's slot: either bumps the version), and bumps the version, so a
    decision that read the ledger before this change fails its condition and decides again: the
    very next decision honours it. A ledger holding an opt-out never expires (the customer's wish
    outlives their follow-ups); without one it expires like a decider's write would set it."""
    values: dict[str, Any] = {
        ":opt_outs": _opt_outs_value(opt_outs),
        ":version": {"N": str(before.version + 1)},
        ":updated_at": {"S": format_utc(now)},
        ":empty": {"L": []},
    }
    update = "SET opt_outs = :opt_outs, version = :version, updated_at = :updated_at, "
    update += "followups = if_not_exists(followups, :empty)"
    if opt_outs:
        update += " REMOVE expires_at"
    else:
        last_send = max((f.send_at for f in before.followups), default=now)
        update += ", expires_at = :expires_at"
        values[":expires_at"] = {"N": str(int((max(last_send, now) + timedelta(days=400)).timestamp()))}
    condition = unchanged_since(before, values)
    return {
        "TableName": table,
        "Key": key(before.customer_id),
        "UpdateExpression": update,
        "ConditionExpression": condition,
        "ExpressionAttributeValues": values,
    }


def replace_if_unchanged(table: str, before: ContactLedger, after: ContactLedger, now: datetime) -> dict[str, Any]:
    """The conditional write that takes a slot: it succeeds only if nobody committed since `before`
    was read. This single condition is what keeps every cap under any concurrency."""
    last_send = max((f.send_at for f in after.followups), default=now)
    values: dict[str, Any] = {
        ":followups": {"L": [followup_value(f) for f in after.followups]},
        ":version": {"N": str(after.version)},
        ":updated_at": {"S": format_utc(now)},
    }
    if after.opt_outs:
        expiry = " REMOVE expires_at"  # an opt-out is kept for good
    else:
        # Lets DynamoDB drop the ledger of a customer no window can count any more.
        expiry = ", expires_at = :expires_at"
        values[":expires_at"] = {"N": str(int((last_send + timedelta(days=400)).timestamp()))}
    condition = unchanged_since(before, values)
    return {
        "TableName": table,
        "Key": key(after.customer_id),
        "UpdateExpression": "SET followups = :followups, version = :version, updated_at = :updated_at" + expiry,
        "ConditionExpression": condition,
        "ExpressionAttributeValues": values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def unchanged_since(before: ContactLedger, values: dict[str, Any]) -> str:
    """The condition that the ledger is still the version `before` was read at (absent for version 0);
    adds its value to `values`. Every write of the ledger goes through it: no blind overwrite."""
    if before.version == 0:
        return f"attribute_not_exists({KEY})"
    values[":expected"] = {"N": str(before.version)}
    return "version = :expected"
