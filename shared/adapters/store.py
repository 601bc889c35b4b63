"""The governor's storage port: read ledgers, commit a decision atomically with its slot.

`DynamoStore` is production (and runs against moto in tests); `MemoryStore` serves simulation
and fast tests. Both pass the same contract tests (tests/integration/test_store_contract.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from botocore.exceptions import ClientError

from shared.adapters import aws, decision_log, ledger
from shared.domain.contacts import ContactLedger
from shared.domain.decision import Decision
from shared.domain.errors import TransientFailure

CONDITION_FAILED = "ConditionalCheckFailed"


@dataclass(frozen=True)
class Committed:
    decision: Decision


@dataclass(frozen=True)
class AlreadyDecided:
    """The event was decided before (a redelivery): this is the first decision, unchanged."""

    decision: Decision


@dataclass(frozen=True)
class LedgerChanged:
    """Someone took a slot since the ledger was read: decide again on `current`."""

    current: ContactLedger


CommitOutcome = Committed | AlreadyDecided | LedgerChanged


class Store(Protocol):
    def load(self, customer_ids: Iterable[str]) -> dict[str, ContactLedger]: ...

    def commit(
        self, decision: Decision, before: ContactLedger, after: ContactLedger | None, now: datetime
    ) -> CommitOutcome: ...

    def get_decision(self, decision_id: str) -> Decision | None: ...


class DynamoStore(aws.AwsPort):
    """One DynamoDB request per decision: a conditional put for a suppression, a two-item
    transaction (ledger slot + log entry) for an approval. The log entry doubles as the
    event's idempotency marker, kept as long as the decision (400 days by default)."""

    def __init__(self, ledger_table: str, log_table: str, retention: timedelta, client: Any = None) -> None:
        self.ledger_table = ledger_table
        self.log_table = log_table
        self.retention = retention
        super().__init__(client)

    def load(self, customer_ids: Iterable[str]) -> dict[str, ContactLedger]:
        wanted = sorted(set(customer_ids))
        found: dict[str, ContactLedger] = {cid: ContactLedger(cid) for cid in wanted}
        for start in range(0, len(wanted), 100):
            request: dict[str, Any] = {
                self.ledger_table: {
                    "Keys": [ledger.key(cid) for cid in wanted[start : start + 100]],
                    "ConsistentRead": True,
                }
            }
            for _ in range(5):
                answer = self.client.batch_get_item(RequestItems=request)
                for item in answer["Responses"].get(self.ledger_table, []):
                    cid = item[ledger.KEY]["S"]
                    found[cid] = ledger.from_item(cid, item)
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise TransientFailure("ledger reads stayed unprocessed (throttled)")
        return found

    def commit(
        self, decision: Decision, before: ContactLedger, after: ContactLedger | None, now: datetime
    ) -> CommitOutcome:
        log_put = decision_log.put_once(self.log_table, decision, self.retention)
        if after is None:
            try:
                self.client.put_item(**log_put)
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                return AlreadyDecided(decision_log.from_item(error.response["Item"]))
            return Committed(decision)
        slot = ledger.replace_if_unchanged(self.ledger_table, before, after, now)
        try:
            self.client.transact_write_items(TransactItems=[{"Update": slot}, {"Put": log_put}])
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            slot_reason, log_reason = error.response.get("CancellationReasons", [{}, {}])
            if log_reason.get("Code") == CONDITION_FAILED:
                return AlreadyDecided(decision_log.from_item(log_reason["Item"]))
            if slot_reason.get("Code") == CONDITION_FAILED:
                return LedgerChanged(ledger.from_item(before.customer_id, slot_reason.get("Item")))
            raise TransientFailure(
                f"transaction cancelled: {slot_reason.get('Code')}/{log_reason.get('Code')}"
            ) from error
        return Committed(decision)

    def get_decision(self, decision_id: str) -> Decision | None:
        item = self.client.get_item(TableName=self.log_table, Key=decision_log.key(decision_id), ConsistentRead=True)
        return decision_log.from_item(item["Item"]) if "Item" in item else None


class MemoryStore:
    """The same port in memory, for simulation (nothing real is written) and fast tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ledgers: dict[str, ContactLedger] = {}
        self.decisions: dict[str, Decision] = {}

    def load(self, customer_ids: Iterable[str]) -> dict[str, ContactLedger]:
        with self._lock:
            return {cid: self.ledgers.get(cid, ContactLedger(cid)) for cid in set(customer_ids)}

    def commit(
        self, decision: Decision, before: ContactLedger, after: ContactLedger | None, now: datetime
    ) -> CommitOutcome:
        with self._lock:
            if decision.decision_id in self.decisions:
                return AlreadyDecided(self.decisions[decision.decision_id])
            if after is not None:
                current = self.ledgers.get(before.customer_id, ContactLedger(before.customer_id))
                if current.version != before.version:
                    return LedgerChanged(current)
                self.ledgers[after.customer_id] = after
            self.decisions[decision.decision_id] = decision
            return Committed(decision)

    def get_decision(self, decision_id: str) -> Decision | None:
        with self._lock:
            return self.decisions.get(decision_id)
