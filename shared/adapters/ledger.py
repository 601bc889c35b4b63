"""The contact ledger table: one item per customer. This module alone spells its keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.contacts import PENDING, RELEASED, ContactLedger, FollowUp, OptOut
from shared.domain.decision import Action, format_utc

KEY = "customer_id"
# A ledger without an opt-out is kept at least this long after its last follow-up, and longer when
# a window of the policy that took the slot is longer (ContactLedger.keep_until).
KEPT_AFTER_LAST_SEND = timedelta(days=400)


def key(customer_id: str) -> dict[str, Any]:
    return {KEY: {"S": customer_id}}


def from_item(customer_id: str, item: dict[str, Any] | None) -> ContactLedger:
    if not item:
        return ContactLedger(customer_id)
    followups = tuple(followup_from(entry) for entry in item.get("followups", {}).get("L", []))
    opt_outs = tuple(
        OptOut(kind, entry["M"]["source"]["S"], datetime.fromisoformat(entry["M"]["at"]["S"]))
        for kind, entry in sorted(item.get("opt_outs", {}).get("M", {}).items())
    )
    # The item's expiry is a lower bound of how long it must be kept; keep_until is stored only when
    # a policy's window asks for longer (and outlives the expiry an opt-out removes).
    kept = [int(item[name]["N"]) for name in ("keep_until", "expires_at") if name in item]
    keep_until = datetime.fromtimestamp(max(kept), UTC) if kept else None
    return ContactLedger(customer_id, int(item["version"]["N"]), followups, opt_outs, keep_until)


def expiry(ledger: ContactLedger, now: datetime) -> int:
    """When DynamoDB may drop a ledger without an opt-out (its `expires_at`, epoch seconds): once no
    window can count its follow-ups: 400 days after the last, or later if a policy's window is longer."""
    last_send = max((f.send_at for f in ledger.followups), default=now)
    return int(max(last_send + KEPT_AFTER_LAST_SEND, ledger.keep_until or last_send).timestamp())


# A follow-up is stored as one string (a ledger is rewritten whole by every slot-taking write, so
# its size is what such a write costs):
#   {kind}{flags}|{send_at}|{interaction_id}|{decision_id}|{closed_at}|{responded_at}
# - kind: s survey, c callback; flags: p pending (held), f delivery failed, R/r reached yes/no,
#   V/v resolved yes/no (absent: no outcome reported);
# - send_at: seconds since the epoch in hex, then "." and the microseconds in hex if any;
#   closed_at and responded_at: the same for their distance from send_at ("-" before a negative
#   one), empty when unknown, trailing empty fields left out;
# - decision_id without its "dcn_" prefix ("=" and the whole id for any other form).
# An entry whose ids hold a "|" is a JSON array of the same fields instead. Entries stored before
# (a map: kind, send_at, interaction_id, decision_id, and the short-named lifecycle attributes
# below, present only when they say something) still read.
_STATE, _CLOSED_AT, _RESPONDED_AT, _REACHED, _RESOLVED, _FAILED = "st", "ca", "ra", "rc", "rs", "df"
_KIND_CODES = {Action.SURVEY: "s", Action.CALLBACK: "c"}
_KIND_OF_CODE = {"s": Action.SURVEY, "c": Action.CALLBACK}
_DECISION_PREFIX = "dcn_"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _span_text(span: timedelta) -> str:
    """A span as stored: seconds in hex, then "." and microseconds in hex if any; exact."""
    total = span // _MICROSECOND
    sign = "-" if total < 0 else ""
    seconds, micros = divmod(abs(total), 1_000_000)
    return f"{sign}{seconds:x}.{micros:x}" if micros else f"{sign}{seconds:x}"


def _span_of(text: str) -> timedelta:
    negative = text.startswith("-")
    seconds, _, micros = text.lstrip("-").partition(".")
    span = timedelta(seconds=int(seconds, 16), microseconds=int(micros, 16) if micros else 0)
    return -span if negative else span


def _flags(f: FollowUp) -> str:
    flags = _KIND_CODES[f.kind]
    if f.pending:
        flags += "p"
    if f.delivery_failed:
        flags += "f"
    if f.reached is not None:
        flags += "R" if f.reached else "r"
    if f.resolved is not None:
        flags += "V" if f.resolved else "v"
    return flags


def followup_value(f: FollowUp) -> dict[str, Any]:
    """The stored form of a follow-up (see above): one string attribute value."""
    decision_id = f.decision_id
    # Any id not of the governor's form is kept whole, after a "=" (never in a governor id).
    short = decision_id.startswith(_DECISION_PREFIX)
    decision_id = decision_id[len(_DECISION_PREFIX) :] if short else "=" + decision_id
    fields = [
        _flags(f),
        _span_text(f.send_at - _EPOCH),
        f.interaction_id,
        decision_id,
        _span_text(f.closed_at - f.send_at) if f.closed_at is not None else "",
        _span_text(f.responded_at - f.send_at) if f.responded_at is not None else "",
    ]
    while not fields[-1]:
        fields.pop()
    if "|" in f.interaction_id or "|" in decision_id:
        return {"S": json.dumps(fields, separators=(",", ":"))}
    return {"S": "|".join(fields)}


def followup_from(entry: dict[str, Any]) -> FollowUp:
    """A follow-up from its stored value: the string form, or the map of entries stored before it
    (given as the attribute value {"M": ...} or as the map's contents)."""
    if "S" in entry and len(entry) == 1:
        text: str = entry["S"]
        fields = json.loads(text) if text.startswith("[") else text.split("|")
        return _followup_of_fields(fields)
    return _followup_of_map(entry["M"] if "M" in entry and len(entry) == 1 else entry)


def _followup_of_fields(fields: list[str]) -> FollowUp:
    fields = fields + [""] * (6 - len(fields))
    flags, sent, interaction_id, decision_id, closed, responded = fields
    send_at = _EPOCH + _span_of(sent)
    return FollowUp(
        kind=_KIND_OF_CODE[flags[0]],
        send_at=send_at,
        interaction_id=interaction_id,
        decision_id=decision_id[1:] if decision_id.startswith("=") else _DECISION_PREFIX + decision_id,
        state=PENDING if "p" in flags else RELEASED,
        closed_at=send_at + _span_of(closed) if closed else None,
        responded_at=send_at + _span_of(responded) if responded else None,
        reached=True if "R" in flags else False if "r" in flags else None,
        resolved=True if "V" in flags else False if "v" in flags else None,
        delivery_failed="f" in flags,
    )


def _time(entry: dict[str, Any], name: str) -> datetime | None:
    value = entry.get(name)
    return datetime.fromisoformat(value["S"]) if value else None


def _flag(entry: dict[str, Any], name: str) -> bool | None:
    value = entry.get(name)
    return bool(value["BOOL"]) if value else None


def _followup_of_map(entry: dict[str, Any]) -> FollowUp:
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
        update += ", expires_at = :expires_at"
        values[":expires_at"] = {"N": str(max(expiry(before, now), int((now + KEPT_AFTER_LAST_SEND).timestamp())))}
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
    values: dict[str, Any] = {
        ":followups": {"L": [followup_value(f) for f in after.followups]},
        ":version": {"N": str(after.version)},
        ":updated_at": {"S": format_utc(now)},
    }
    keep = ""
    last_send = max((f.send_at for f in after.followups), default=now)
    if after.keep_until is not None and after.keep_until > last_send + KEPT_AFTER_LAST_SEND:
        # A window longer than the default keep: stored apart from the expiry, which an opt-out
        # removes, so lifting the opt-out later restores the right expiry.
        keep = ", keep_until = :keep_until"
        values[":keep_until"] = {"N": str(int(after.keep_until.timestamp()))}
    if after.opt_outs:
        expiry_update = " REMOVE expires_at"  # an opt-out is kept for good
    else:
        # Lets DynamoDB drop the ledger of a customer no window can count any more.
        expiry_update = ", expires_at = :expires_at"
        values[":expires_at"] = {"N": str(expiry(after, now))}
    condition = unchanged_since(before, values)
    return {
        "TableName": table,
        "Key": key(after.customer_id),
        "UpdateExpression": "SET followups = :followups, version = :version, updated_at = :updated_at"
        + keep
        + expiry_update,
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
