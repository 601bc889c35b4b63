"""The decision log's stream is the outbox. Two consumers read it, each with its own event
source mapping (template.yaml), because they want opposite batches:

- publishing (this module, LogStreamFunction, a 5 s window): an INSERT of a decision is announced
  in its state (its release scheduled first when it is pending; shared.usecases.announce), a
  MODIFY whose `state` changed (pending -> released or cancelled: a release, a re-check's
  cancellation, a supersession) is announced in its new state: the same Source, DetailType and
  Detail the decide and release paths published before. Admin and outcome records, and changes
  that leave the state alone, publish nothing. At least once: consumers dedupe on (decision_id,
  state) (the documented contract: one announcement per state reached), since a retried batch
  publishes again. It writes nothing to DynamoDB, so
  a batch's size costs nothing but invocations, and follow-ups are announced within seconds;
- counting and day pages (shared.usecases.log_count, LogCountFunction, a 300 s window): exactly
  once, one transaction per batch, so the longer the batch the cheaper each record.

The decide path only commits (one conditional write per event); the release function only
settles. DynamoDB's stream of the log table (NEW_AND_OLD_IMAGES) holds every committed change for
24 hours, in order per item, and Lambda reads it for free. A stream has about one shard per table
partition and Lambda batches each shard apart, so a busy log's window is split many ways: a
transaction per 5 s batch would be paid for every ~2 records of a 30-partition log, which is why
counting has a mapping of its own (DynamoDB allows two readers per shard; these are the two).

A publishing batch is retried from the first record whose announcement failed (reported in
batchItemFailures, so Lambda moves the checkpoint past the ones before it, which were announced).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from shared import faults
from shared.adapters import decision_log
from shared.adapters.aws import AWS_ERRORS, retryable
from shared.adapters.day_pages import Row, rows_of
from shared.adapters.stats import decision_counts, lifecycle_counts
from shared.domain.decision import Decision, State

logger = Logger(child=True)


@dataclass(frozen=True)
class Change:
    """One stream record: its sequence number, INSERT / MODIFY / REMOVE, and the item's images
    (DynamoDB JSON) after and before."""

    sequence: str
    kind: str
    new: dict[str, Any] | None = None
    old: dict[str, Any] | None = None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Change:
        """A record of Lambda's DynamoDB stream event."""
        dynamodb = record["dynamodb"]
        return cls(
            str(dynamodb["SequenceNumber"]), record["eventName"], dynamodb.get("NewImage"), dynamodb.get("OldImage")
        )

    @property
    def position(self) -> int:
        """Sequence numbers are decimal strings of up to 40 digits: compared as numbers."""
        return int(self.sequence)


@dataclass(frozen=True)
class Effect:
    """What one change means: a decision to announce (None: nothing), the counts it adds, by day,
    and the row listing it on its day's pages (an INSERTed decision only)."""

    announce: Decision | None = None
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    row: Row | None = None


def effect_of(change: Change) -> Effect:
    new = decision_log.decision_of(change.new)
    if new is None:  # an admin or outcome record, or an entry expiring (REMOVE)
        return Effect()
    if change.kind == "INSERT":
        (row,) = rows_of([new])
        return Effect(new, {f"{new.decided_at:%Y-%m-%d}": decision_counts(new)}, row)
    old = decision_log.decision_of(change.old)
    if change.kind != "MODIFY" or old is None or old.state is new.state:
        return Effect()
    if new.state is State.RELEASED:
        counts = lifecycle_counts(released=[new])
    elif new.state is State.CANCELLED:
        counts = lifecycle_counts(cancelled=[new.state_reason])
    else:  # no transition leads anywhere else; announce nothing rather than guess
        logger.warning("unexpected state change", extra={"decision_id": new.decision_id, "state": str(new.state)})
        return Effect()
    return Effect(new, {f"{new.state_changed_at:%Y-%m-%d}": counts})


class Announcing(Protocol):
    def publish(self, decisions: Sequence[Decision]) -> list[Decision]: ...


@dataclass(frozen=True)
class Report:
    """One batch: how many records came, how many decisions were announced, and the record to
    restart from (None: the whole batch is done)."""

    records: int
    announced: int = 0
    retry_from: str | None = None

    def batch_item_failures(self) -> list[dict[str, str]]:
        return [{"itemIdentifier": self.retry_from}] if self.retry_from is not None else []


@dataclass
class LogStreamUseCase:
    announcer: Announcing

    def run(self, changes: Sequence[Change]) -> Report:
        """Announces one batch of one shard, in stream order. A transient AWS failure ends the
        batch at the first record not announced (to retry from); other errors propagate (a bug:
        the invocation fails and Lambda retries the batch)."""
        if not changes:
            return Report(0)
        effects = [effect_of(change) for change in changes]
        finished = self._announce(effects)
        faults.checkpoint(faults.AFTER_PUBLISH)
        announced = sum(1 for e in effects[:finished] if e.announce is not None)
        retry_from = changes[finished].sequence if finished < len(changes) else None
        if retry_from is not None:
            logger.warning("batch left for a retry", extra={"retry_from": retry_from, "done": finished})
        return Report(len(changes), announced, retry_from)

    def _announce(self, effects: Sequence[Effect]) -> int:
        """Announces every decision of the batch at once; returns how many leading records are done
        (all of them, or up to the first whose announcement failed)."""
        outgoing = [e.announce for e in effects if e.announce is not None]
        if not outgoing:
            return len(effects)
        try:
            left = {id(d) for d in self.announcer.publish(outgoing)}
        except AWS_ERRORS as error:
            if not retryable(error):
                raise
            logger.warning("publishing failed", extra={"error": type(error).__name__})
            left = {id(d) for d in outgoing}
        for index, found in enumerate(effects):
            if found.announce is not None and id(found.announce) in left:
                return index
        return len(effects)
