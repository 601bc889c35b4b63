"""The governor's storage port: read ledgers, commit a decision atomically with its slot, and
settle a pending follow-up (release or cancel it) atomically with its slot.

Every state change of a pending follow-up is one transaction that holds the ledger's version
condition and the log entry's `state = pending` condition: a decision that supersedes it, and its
release, both bump the ledger version, so when they race exactly one wins and the other re-reads.

Nothing else rides on these writes: the log table's stream carries each committed decision and
each state change to the log stream function, which publishes and counts them
(shared.usecases.log_stream).

`DynamoStore` is production (and runs against moto in tests); `MemoryStore` serves simulation
and fast tests. Both pass the same contract tests (tests/integration/test_slot_taking.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from botocore.exceptions import ClientError

from shared.adapters import aws, batch_get, decision_log, ledger
from shared.domain.contacts import ContactLedger
from shared.domain.decision import CancelReason, Decision, State
from shared.domain.errors import TransientFailure

CONDITION_FAILED = "ConditionalCheckFailed"
CONFLICT = "TransactionConflict"


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
class LedgerStale:
    """The ledger holds as pending a follow-up the log says was released, cancelled or is gone (it
    missed that change): nothing was written; decide again on `current`, the ledger as the log tells
    it (same version), and write it with the decision, which mends it."""

    current: ContactLedger


@dataclass(frozen=True)
class Contended:
    """Another request was writing the same item at that moment (TransactionConflict): nothing was
    written; read again and decide again after a backoff."""


@dataclass(frozen=True)
class NotPending:
    """The follow-up was settled (released or cancelled) by someone else meanwhile: nothing was
    written; read the decision again to see how."""


CommitOutcome = Committed | AlreadyDecided | LedgerChanged | LedgerStale | Contended
SettleOutcome = Committed | NotPending | LedgerChanged | Contended


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

    def settle(
        self, settled: Decision, before: ContactLedger, after: ContactLedger, now: datetime
    ) -> SettleOutcome: ...

    def get_decision(self, decision_id: str) -> Decision | None: ...


def state_change(
    table: str, decision_id: str, state: State, reason: CancelReason | None, at: datetime
) -> dict[str, Any]:
    """The log entry's lifecycle update, only while it is still pending: what makes a release or
    a cancellation happen once, however many firings, retries and deciders race for it."""
    return {"TableName": table, **decision_log.state_update(decision_id, state, reason, at)}


class DynamoStore(aws.AwsPort):
    """One DynamoDB request per decision: a conditional put for a suppression, a transaction
    (ledger slot + log entry, + each pending follow-up it supersedes) for an approval or a
    superseding suppression. The log entry doubles as the event's idempotency marker, kept as
    long as the decision (400 days by default)."""

    def __init__(self, ledger_table: str, log_table: str, retention: timedelta, client: Any = None) -> None:
        self.ledger_table = ledger_table
        self.log_table = log_table
        self.retention = retention
        super().__init__(client)

    def load(self, customer_ids: Iterable[str]) -> dict[str, ContactLedger]:
        wanted = sorted(set(customer_ids))
        found: dict[str, ContactLedger] = {cid: ContactLedger(cid) for cid in wanted}
        keys = [ledger.key(cid) for cid in wanted]
        for item in batch_get.items(self.client, self.ledger_table, keys, consistent=True):
            cid = item[ledger.KEY]["S"]
            found[cid] = ledger.from_item(cid, item)
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
        if decision.supersedes and after is None:
            raise ValueError("a decision that supersedes follow-ups must free their slots (after)")
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
        if decision.decision_id in decision.supersedes:
            # The ledger holds this very decision's pending follow-up: the event was decided before
            # (its id reused with other content, say a later closed_at). One transaction may not both
            # create and cancel an entry (DynamoDB refuses it as invalid, for good), so answer from
            # the first decision, as the memory store does.
            first = self.client.get_item(
                TableName=self.log_table, Key=decision_log.key(decision.decision_id), ConsistentRead=True
            )
            if "Item" not in first:
                raise TransientFailure("the ledger holds a follow-up whose log entry is missing")
            return _already_decided(first["Item"])
        slot = ledger.replace_if_unchanged(self.ledger_table, before, after, now)
        items: list[dict[str, Any]] = [{"Update": slot}, {"Put": log_put}]
        # Each superseded follow-up is cancelled in the same write that frees its slot for this one.
        superseded = CancelReason.SUPERSEDED_BY_NEWER_INTERACTION
        items += [
            {"Update": state_change(self.log_table, decision_id, State.CANCELLED, superseded, now)}
            for decision_id in decision.supersedes
        ]
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons") or [{} for _ in items]
            slot_reason, log_reason = reasons[0], reasons[1]
            if log_reason.get("Code") == CONDITION_FAILED:
                return _already_decided(log_reason["Item"])
            if slot_reason.get("Code") == CONDITION_FAILED:
                return LedgerChanged(ledger.from_item(before.customer_id, slot_reason.get("Item")))
            codes = [r.get("Code") for r in reasons]
            if CONFLICT in codes:
                return Contended()
            # A superseded entry no longer pending while the ledger is unchanged: the ledger missed
            # its release or cancellation (a release parked and never replayed, an entry expired
            # before its slot). The log says what became of it: decide again on the ledger made to
            # agree with it; the next write of the ledger mends it.
            states = {d: self._state_of(d) for d in decision.supersedes}
            if all(state is State.PENDING for state in states.values()):
                raise TransientFailure(f"transaction cancelled: {'/'.join(str(c) for c in codes)}") from error
            return LedgerStale(before.agreeing_with(states))
        return Committed(decision)

    def _state_of(self, decision_id: str) -> State | None:
        found = self.get_decision(decision_id)
        return found.state if found else None

    def settle(self, settled: Decision, before: ContactLedger, after: ContactLedger, now: datetime) -> SettleOutcome:
        """Releases or cancels a pending follow-up: its ledger entry (version condition) and its log
        entry (`state = pending` condition), in one transaction."""
        items: list[dict[str, Any]] = [
            {"Update": ledger.replace_if_unchanged(self.ledger_table, before, after, now)},
            {
                "Update": state_change(
                    self.log_table, settled.decision_id, settled.state, settled.state_reason, settled.state_changed_at
                )
            },
        ]
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons") or [{} for _ in items]
            if reasons[1].get("Code") == CONDITION_FAILED:
                return NotPending()
            if reasons[0].get("Code") == CONDITION_FAILED:
                return LedgerChanged(ledger.from_item(before.customer_id, reasons[0].get("Item")))
            codes = [r.get("Code") for r in reasons]
            if CONFLICT in codes:
                return Contended()
            raise TransientFailure(f"transaction cancelled: {'/'.join(str(c) for c in codes)}") from error
        return Committed(settled)

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
            if decision.supersedes and after is None:
                raise ValueError("a decision that supersedes follow-ups must free their slots (after)")
            if after is not None:
                current = self.ledgers.get(before.customer_id, ContactLedger(before.customer_id))
                if current.version != before.version:
                    return LedgerChanged(current)
                states = {d: self._state(d) for d in decision.supersedes}
                if any(state is not State.PENDING for state in states.values()):
                    return LedgerStale(current.agreeing_with(states))
                self.ledgers[after.customer_id] = after
                for superseded in decision.supersedes:
                    self.decisions[superseded] = self.decisions[superseded].with_state(
                        State.CANCELLED, CancelReason.SUPERSEDED_BY_NEWER_INTERACTION, now
                    )
            self.decisions[decision.decision_id] = decision
            self.fingerprints[decision.decision_id] = fingerprint
            return Committed(decision)

    def settle(self, settled: Decision, before: ContactLedger, after: ContactLedger, now: datetime) -> SettleOutcome:
        with self._lock:
            if self._state(settled.decision_id) is not State.PENDING:
                return NotPending()
            current = self.ledgers.get(before.customer_id, ContactLedger(before.customer_id))
            if current.version != before.version:
                return LedgerChanged(current)
            self.ledgers[after.customer_id] = after
            self.decisions[settled.decision_id] = settled
            return Committed(settled)

    def _state(self, decision_id: str) -> State | None:
        found = self.decisions.get(decision_id)
        return found.state if found else None

    def get_decision(self, decision_id: str) -> Decision | None:
        with self._lock:
            return self.decisions.get(decision_id)
