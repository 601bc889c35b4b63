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

from shared.adapters import aws, decision_log, ledger, retry
from shared.domain.contacts import ContactLedger
from shared.domain.decision import Decision
from shared.domain.errors import TransientFailure

CONDITION_FAILED = "ConditionalCheckFailed"
CONFLICT = "TransactionConflict"
READ_ATTEMPTS = 5


@dataclass(frozen=True)
class Committed:
    decision: Decision


@dataclass(frozen=True)
class AlreadyDecided:
    """The event was decided before: this is the first decision, unchanged, with the fingerprint
    of the event it decided (None for entries older than fingerprints), for the caller to tell a
    redelivery from another event reusing the id."""

    decision: Decision
    fingerprint: str | None = None


@dataclass(frozen=True)
class LedgerChanged:
    """Someone took a slot since the ledger was read: decide again on `current`."""

    current: ContactLedger


@dataclass(frozen=True)
class Contended:
    """Another request was writing the same item at that moment (TransactionConflict): nothing was
    written; read again and decide again after a backoff."""


CommitOutcome = Committed | AlreadyDecided | LedgerChanged | Contended


class Store(Protocol):
    def load(self, customer_ids: Iterable[str]) -> dict[str, ContactLedger]: ...

    def commit(
        self,
        decision: Decision,
        before: ContactLedger,
        after: ContactLedger | None,
        now: datetime,
        fingerprint: str | None = None,
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
            for attempt in range(READ_ATTEMPTS):
                if attempt:
                    retry.backoff(attempt)  # unprocessed keys mean throttling: give it room
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
        self,
        decision: Decision,
        before: ContactLedger,
        after: ContactLedger | None,
        now: datetime,
        fingerprint: str | None = None,
    ) -> CommitOutcome:
        log_put = decision_log.put_once(self.log_table, decision, self.retention, fingerprint)
        if after is None:
            try:
                self.client.put_item(**log_put)
            except ClientError as error:
                code = error.response["Error"]["Code"]
                if code == "TransactionConflictException":
                    return Contended()
                if code != "ConditionalCheckFailedException":
                    raise
                return _already_decided(error.response["Item"])
            return Committed(decision)
        slot = ledger.replace_if_unchanged(self.ledger_table, before, after, now)
        try:
            self.client.transact_write_items(TransactItems=[{"Update": slot}, {"Put": log_put}])
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            slot_reason, log_reason = error.response.get("CancellationReasons", [{}, {}])
            if log_reason.get("Code") == CONDITION_FAILED:
                return _already_decided(log_reason["Item"])
            if slot_reason.get("Code") == CONDITION_FAILED:
                return LedgerChanged(ledger.from_item(before.customer_id, slot_reason.get("Item")))
            if CONFLICT in (slot_reason.get("Code"), log_reason.get("Code")):
                return Contended()
            raise TransientFailure(
                f"transaction cancelled: {slot_reason.get('Code')}/{log_reason.get('Code')}"
            ) from error
        return Committed(decision)

    def get_decision(self, decision_id: str) -> Decision | None:
        item = self.client.get_item(TableName=self.log_table, Key=decision_log.key(decision_id), ConsistentRead=True)
        return decision_log.from_item(item["Item"]) if "Item" in item else None


def _already_decided(item: dict[str, Any]) -> AlreadyDecided:
    return AlreadyDecided(decision_log.from_item(item), decision_log.fingerprint_of_item(item))


class MemoryStore:
    """The same port in memory, for simulation (nothing real is written) and fast tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ledgers: dict[str, ContactLedger] = {}
        self.decisions: dict[str, Decision] = {}
        self.fingerprints: dict[str, str | None] = {}

    def load(self, customer_ids: Iterable[str]) -> dict[str, ContactLedger]:
        with self._lock:
            return {cid: self.ledgers.get(cid, ContactLedger(cid)) for cid in set(customer_ids)}

    def commit(
        self,
        decision: Decision,
        before: ContactLedger,
        after: ContactLedger | None,
        now: datetime,
        fingerprint: str | None = None,
    ) -> CommitOutcome:
        with self._lock:
            if decision.decision_id in self.decisions:
                first = decision.decision_id
                return AlreadyDecided(self.decisions[first], self.fingerprints.get(first))
            if after is not None:
                current = self.ledgers.get(before.customer_id, ContactLedger(before.customer_id))
                if current.version != before.version:
                    return LedgerChanged(current)
                self.ledgers[after.customer_id] = after
            self.decisions[decision.decision_id] = decision
            self.fingerprints[decision.decision_id] = fingerprint
            return Committed(decision)

    def get_decision(self, decision_id: str) -> Decision | None:
        with self._lock:
            return self.decisions.get(decision_id)
