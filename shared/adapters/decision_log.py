"""The decision (suppression) log table. This module alone spells its keys.

Keys serve the admin questions:
- by decision id: the table key `decision_id` (also the idempotency marker of the event);
- by customer and time: index `by-customer` (customer_id, decided_at);
- by day: not an index. The log stream function lists each batch's decisions on day pages in the
  stats table (shared.adapters.day_pages), ~60 bytes a decision inside the transaction it already
  writes, where the `by-day` index cost a write unit per decision and per state change; readers
  list a day's ids from the pages and read the entries by key (shared.adapters.log_entries).
  Entries no longer carry `day_shard` (nor `reason_at`, from the older `by-day-reason` index);
  older entries may still hold them, unread;
- the outbox is the table's stream (NEW_AND_OLD_IMAGES): every committed decision and every state
  change reaches the log stream function (shared.usecases.log_stream), which publishes and counts
  it; `decision_of` reads a stream image. No attribute, index or extra write serves it.

Each decision's entry also keeps the `fingerprint` of the event it decided, so a repeat of the
event_id with different content is told apart from a redelivery.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from shared.domain import explanation
from shared.domain.decision import CancelReason, Decision, Reason, State, format_utc
from shared.domain.explanation import REASON_NAMES, instant_of, instant_value

KEY = "decision_id"
BY_CUSTOMER = "by-customer"
FINGERPRINT = "fingerprint"


def key(decision_id: str) -> dict[str, Any]:
    return {KEY: {"S": decision_id}}


def to_item(decision: Decision, retention: timedelta) -> dict[str, Any]:
    """The log entry: the attributes the keys, indexes, filters and replays read, and `doc`, the
    rest of the decision in the compact form below (no rendered sentence: rule codes and figures)."""
    decided_at = format_utc(decision.decided_at)
    return {
        KEY: {"S": decision.decision_id},
        "event_id": {"S": decision.event_id},
        "customer_id": {"S": decision.customer_id},
        "decided_at": {"S": decided_at},
        "action": {"S": str(decision.action)},
        "reason": {"S": str(decision.reason)},
        "policy_version": {"N": str(decision.policy_version)},
        "expires_at": {"N": str(int((decision.decided_at + retention).timestamp()))},
        "doc": {"S": compact_doc(decision)},
        **state_attributes(decision),
    }


# The lifecycle lives in its own top-level attributes (filterable, and updated in place by a
# release or a cancellation without rewriting `doc`); they win over the copy inside `doc`.
# `state_changed_at` is left out while it is the decision time (read back as such); entries
# written before the compact form also carry `supersedes` at the top level (now only in `doc`).
STATE, STATE_REASON, STATE_CHANGED_AT, SUPERSEDES = "state", "state_reason", "state_changed_at", "supersedes"


def state_attributes(decision: Decision) -> dict[str, Any]:
    item: dict[str, Any] = {STATE: {"S": str(decision.state)}}
    if decision.state_changed_at != decision.decided_at:
        item[STATE_CHANGED_AT] = {"S": format_utc(decision.state_changed_at)}
    if decision.state_reason is not None:
        item[STATE_REASON] = {"S": str(decision.state_reason)}
    return item


# --- the compact `doc` ---------------------------------------------------------------------------
# A JSON array, positions as named below, trailing nulls left out:
#   [1, interaction_id, reasons, input, explanation, send_at, state, policy_scope, supersedes,
#    state_reason, state_changed_at]
# - reasons: codes, each the position of the reason in REASON_CODES;
# - input: [channel, closed_at, outcome, handle_seconds, contact_attempts, reopen_count, sentiment,
#   customer_timezone, segment, brand], trailing nulls left out;
# - explanation: shared.domain.explanation.encode (rule codes, verdicts, figure values);
# - instants (send_at, closed_at, state_changed_at, and those in the explanation): seconds from
#   the entry's decided_at (a whole number unless it has microseconds; UTC text if a float could
#   not hold it exactly);
# - state, state_reason, state_changed_at: the lifecycle as written (the top-level attributes are
#   the current one); policy_scope null for "default", supersedes null for none.
# The full JSON form (Decision.model_dump_json, a JSON object) of entries written before it still
# reads: `doc` starting with "{" is that form.
DOC_FORMAT = 1

# The stored reason codes (shared.domain.explanation.REASON_NAMES: append only).
REASON_CODES: tuple[Reason, ...] = tuple(Reason(name) for name in REASON_NAMES)
_REASON_CODE = {reason: code for code, reason in enumerate(REASON_CODES)}
_STATE_CODES = {State.SUPPRESSED: "s", State.PENDING: "p", State.RELEASED: "r", State.CANCELLED: "c"}
_STATE_OF_CODE = {code: state for state, code in _STATE_CODES.items()}


def _trimmed(values: list[Any]) -> list[Any]:
    while values and values[-1] is None:
        values.pop()
    return values


def compact_doc(decision: Decision) -> str:
    """`doc` in the compact form (see above)."""
    base = decision.decided_at
    given = decision.input
    doc = [
        DOC_FORMAT,
        decision.interaction_id,
        [_REASON_CODE[reason] for reason in decision.reasons],
        _trimmed(
            [
                str(given.channel),
                instant_value(given.closed_at, base),
                str(given.outcome),
                given.handle_seconds,
                given.contact_attempts,
                given.reopen_count,
                given.sentiment,
                given.customer_timezone,
                given.segment,
                given.brand,
            ]
        ),
        explanation.encode(decision.explanation, base),
        instant_value(decision.send_at, base),
        _STATE_CODES[decision.state],
        decision.policy_scope if decision.policy_scope != "default" else None,
        list(decision.supersedes) or None,
        str(decision.state_reason) if decision.state_reason is not None else None,
        instant_value(decision.state_changed_at, base) if decision.state_changed_at != base else None,
    ]
    return json.dumps(_trimmed(doc), separators=(",", ":"), ensure_ascii=False)


def _compact_fields(item: dict[str, Any], doc: list[Any]) -> tuple[datetime, dict[str, Any]]:
    """The decision time and the decision's fields but explanation and lifecycle, from a compact doc."""
    base = datetime.fromisoformat(item["decided_at"]["S"])
    doc = doc + [None] * (11 - len(doc))
    given = doc[3] + [None] * (10 - len(doc[3]))
    fields = {
        "decision_id": item[KEY]["S"],
        "event_id": item["event_id"]["S"],
        "interaction_id": doc[1],
        "customer_id": item["customer_id"]["S"],
        "action": item["action"]["S"],
        "reasons": [REASON_CODES[code] for code in doc[2]],
        "policy_version": int(item["policy_version"]["N"]),
        "policy_scope": doc[7] if doc[7] is not None else "default",
        "send_at": instant_of(doc[5], base),
        "decided_at": base,
        "input": {
            "channel": given[0],
            "closed_at": instant_of(given[1], base),
            "outcome": given[2],
            "handle_seconds": given[3],
            "contact_attempts": given[4],
            "reopen_count": given[5],
            "sentiment": given[6],
            "customer_timezone": given[7],
            "segment": given[8],
            "brand": given[9],
        },
        "supersedes": doc[8] or (),
    }
    return base, fields


def _written(doc: list[Any], base: datetime) -> dict[str, Any]:
    """The lifecycle as written in a compact doc."""
    doc = doc + [None] * (11 - len(doc))
    return {
        STATE: _STATE_OF_CODE[doc[6]],
        STATE_REASON: doc[9],
        STATE_CHANGED_AT: instant_of(doc[10], base) if doc[10] is not None else base,
    }


def _compact_decision(item: dict[str, Any], doc: list[Any], lifecycle: dict[str, Any]) -> Decision:
    base, fields = _compact_fields(item, doc)
    fields["explanation"] = explanation.decode(doc[4], base)
    return Decision.model_validate({**fields, **lifecycle})


def _current(item: dict[str, Any], base: datetime, written: dict[str, Any]) -> dict[str, Any]:
    """The lifecycle of the item's own attributes (the current one), else as written."""
    lifecycle = dict(written)
    if STATE in item:
        lifecycle[STATE] = item[STATE]["S"]
        lifecycle[STATE_REASON] = item.get(STATE_REASON, {}).get("S")
        changed = item.get(STATE_CHANGED_AT, {}).get("S")
        lifecycle[STATE_CHANGED_AT] = changed if changed is not None else base
    return lifecycle


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
    updates those, not `doc`); entries logged before the lifecycle existed derive it. Reads the
    compact `doc` and the full JSON form of older entries alike."""
    text = item["doc"]["S"]
    if text.startswith("{"):
        doc = json.loads(text)
        for name in (STATE, STATE_REASON, STATE_CHANGED_AT):
            if name in item:
                doc[name] = item[name]["S"]
        return Decision.model_validate(doc)
    compact = json.loads(text)
    base = datetime.fromisoformat(item["decided_at"]["S"])
    return _compact_decision(item, compact, _current(item, base, _written(compact, base)))


def stored_text(item: dict[str, Any]) -> str:
    """The entry's `doc` in the full JSON form, as it was written: what `doc` itself held before
    the compact form (the decision as decided, its lifecycle as written; an admin or outcome
    record's JSON as is). Timelines answer it, and pages are sized by it."""
    text: str = item["doc"]["S"]
    if text.startswith("{") or "record_type" in item:
        return text
    compact = json.loads(text)
    base = datetime.fromisoformat(item["decided_at"]["S"])
    return _compact_decision(item, compact, _written(compact, base)).model_dump_json()


def replay_fields(item: dict[str, Any]) -> dict[str, Any]:
    """interaction_id, send_at (text) and input (JSON values) of a decision entry, without reading
    its explanation: what a replay of the log needs (shared.adapters.log_replay)."""
    text = item["doc"]["S"]
    if text.startswith("{"):
        decision = from_item(item)
        return {
            "interaction_id": decision.interaction_id,
            "send_at": format_utc(decision.send_at) if decision.send_at else None,
            "input": decision.input.model_dump(mode="json"),
        }
    _, fields = _compact_fields(item, json.loads(text))
    given = fields["input"]
    given["closed_at"] = format_utc(given["closed_at"])
    send_at = fields["send_at"]
    return {
        "interaction_id": fields["interaction_id"],
        "send_at": format_utc(send_at) if send_at is not None else None,
        "input": given,
    }


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
