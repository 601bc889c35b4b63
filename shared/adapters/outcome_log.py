"""Outcome records in the decision log table, and the one transaction that records an outcome.

An outcome record is keyed `out_<hash of outcome_id>`: written with attribute_not_exists, it is the
outcome's idempotency marker, and it keeps the outcome's fingerprint so a repeat is told apart from
another outcome reusing the id. It carries `record_type = outcome`, the customer and `decided_at` (the
time it occurred), so it shows in the customer's timeline (index by-customer) while decision
queries skip it (they read only entries without a record_type); it has no day shard, so it stays
out of the day indexes, and its stream record publishes and counts nothing.

Recording is ONE transaction: the record (attribute_not_exists), a ConditionCheck that the decision
was released (its log entry's `state`), and the ledger update (the ledger's version condition).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from shared.adapters import aws, batch_get, decision_log, ledger
from shared.domain.contacts import ContactLedger
from shared.domain.decision import Action, Decision, State, format_utc
from shared.domain.errors import TransientFailure
from shared.domain.outcomes import FollowUpOutcome

OUTCOME = "outcome"
RECORD_TYPE = "record_type"
CONDITION_FAILED = "ConditionalCheckFailed"
CONFLICT = "TransactionConflict"
# Released, or logged before the lifecycle existed (no `state`): every approval then was released at once.
RELEASED_CONDITION = "#state = :released OR (attribute_not_exists(#state) AND #action <> :none)"


def key_of(outcome_id: str) -> str:
    digest = hashlib.sha256(outcome_id.encode()).digest()[:20]
    return "out_" + base64.b32encode(digest).decode().rstrip("=").lower()


def to_item(
    outcome: FollowUpOutcome, decision: Decision, fingerprint: str, now: datetime, retention: timedelta
) -> dict[str, Any]:
    doc = {
        RECORD_TYPE: OUTCOME,
        "customer_id": decision.customer_id,
        "action": str(outcome.type),
        "at": format_utc(now),
        **outcome.model_dump(mode="json", exclude_none=True),
        "occurred_at": format_utc(outcome.occurred_at),
    }
    return {
        decision_log.KEY: {"S": key_of(outcome.outcome_id)},
        RECORD_TYPE: {"S": OUTCOME},
        "customer_id": {"S": decision.customer_id},
        "decided_at": {"S": format_utc(outcome.occurred_at)},
        "action": {"S": str(outcome.type)},
        "outcome_of": {"S": decision.decision_id},
        decision_log.FINGERPRINT: {"S": fingerprint},
        "expires_at": {"N": str(int((max(now, outcome.occurred_at) + retention).timestamp()))},
        "doc": {"S": json.dumps(doc, sort_keys=True)},
    }


def is_outcome_record(item: dict[str, Any]) -> bool:
    return bool(item.get(RECORD_TYPE, {}).get("S") == OUTCOME)


def from_item(item: dict[str, Any]) -> tuple[str, FollowUpOutcome]:
    """An outcome record as (customer_id, outcome): what a replay of the log feeds the ledger."""
    doc = json.loads(item["doc"]["S"])
    fields = {name: doc[name] for name in FollowUpOutcome.model_fields if name in doc}
    return str(doc["customer_id"]), FollowUpOutcome.model_validate(fields)


@dataclass(frozen=True)
class Seen:
    """What the log holds for a batch of outcomes: their decisions, and the fingerprints of the
    outcomes already recorded (by outcome key)."""

    decisions: dict[str, Decision]
    recorded: dict[str, str]


@dataclass(frozen=True)
class Recorded:
    pass


@dataclass(frozen=True)
class AlreadyRecorded:
    fingerprint: str | None


@dataclass(frozen=True)
class NotReleased:
    pass


@dataclass(frozen=True)
class LedgerChanged:
    current: ContactLedger


@dataclass(frozen=True)
class Contended:
    pass


CommitResult = Recorded | AlreadyRecorded | NotReleased | LedgerChanged | Contended


class OutcomeLog(aws.AwsPort):
    def __init__(self, ledger_table: str, log_table: str, retention: timedelta, client: Any = None) -> None:
        self.ledger_table = ledger_table
        self.log_table = log_table
        self.retention = retention
        super().__init__(client)

    def read(self, outcomes: list[FollowUpOutcome]) -> Seen:
        """The decisions named and the outcome records already written, in BatchGetItem requests."""
        wanted = sorted({o.decision_id for o in outcomes} | {key_of(o.outcome_id) for o in outcomes})
        decisions: dict[str, Decision] = {}
        recorded: dict[str, str] = {}
        keys = [decision_log.key(k) for k in wanted]
        for item in batch_get.items(self.client, self.log_table, keys, consistent=True):
            name = item[decision_log.KEY]["S"]
            if is_outcome_record(item):
                recorded[name] = decision_log.fingerprint_of_item(item) or ""
            elif RECORD_TYPE not in item:  # an admin action is no decision either
                decisions[name] = decision_log.from_item(item)
        return Seen(decisions, recorded)

    def commit(
        self,
        outcome: FollowUpOutcome,
        decision: Decision,
        *,
        fingerprint: str,
        before: ContactLedger,
        after: ContactLedger | None,
        now: datetime,
    ) -> CommitResult:
        """Writes the record, checks the decision is released and updates the ledger, all or nothing.
        `after` None: the follow-up is no longer in the ledger (aged out), only the record is written."""
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.log_table,
                    "Item": to_item(outcome, decision, fingerprint, now, self.retention),
                    "ConditionExpression": f"attribute_not_exists({decision_log.KEY})",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                "ConditionCheck": {
                    "TableName": self.log_table,
                    "Key": decision_log.key(decision.decision_id),
                    "ConditionExpression": RELEASED_CONDITION,
                    "ExpressionAttributeNames": {"#state": "state", "#action": "action"},
                    "ExpressionAttributeValues": {
                        ":released": {"S": str(State.RELEASED)},
                        ":none": {"S": str(Action.NONE)},
                    },
                }
            },
        ]
        if after is not None:
            items.append({"Update": ledger.replace_if_unchanged(self.ledger_table, before, after, now)})
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons", [])
            codes = [r.get("Code") for r in reasons] + [None] * (3 - len(reasons))
            if codes[0] == CONDITION_FAILED:
                return AlreadyRecorded(decision_log.fingerprint_of_item(reasons[0].get("Item", {})))
            if codes[1] == CONDITION_FAILED:
                return NotReleased()
            if codes[2] == CONDITION_FAILED:
                return LedgerChanged(ledger.from_item(before.customer_id, reasons[2].get("Item")))
            if CONFLICT in codes:
                return Contended()
            raise TransientFailure(f"transaction cancelled: {'/'.join(str(c) for c in codes)}") from error
        return Recorded()
