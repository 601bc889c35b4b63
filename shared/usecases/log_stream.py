"""The decision log's stream is the outbox: each batch of its records is published, then counted.

The decide path only commits (one conditional write per event); the release function only
settles. DynamoDB's stream of the log table (NEW_AND_OLD_IMAGES) holds every committed change for
24 hours, in order per item, and Lambda reads it for free; this use case turns a batch of records
into what used to ride on the decide path:

- publishing, at least once: an INSERT of a decision is announced in its state (its release
  scheduled first when it is pending; shared.usecases.announce), a MODIFY whose `state` changed
  (pending -> released or cancelled: a release, a re-check's cancellation, a supersession) is
  announced in its new state: the same Source, DetailType and Detail the decide and release paths
  published before. Admin and outcome records, and changes that leave the state alone, publish
  nothing. Consumers dedupe on decision_id (the documented contract), since a retried batch
  publishes again;
- counting, exactly once, without marking the log entries: after publishing, ONE
  TransactWriteItems per batch adds the batch's counts (decisions on their decided_at day,
  releases and cancellations on their state_changed_at day) and writes a receipt keyed by the
  batch's FIRST sequence number, holding `through`, the last sequence number it counted. The
  receipt is not read first: a batch is almost always new, so the transaction assumes no receipt
  (its condition: none exists) and the receipt is read only when that condition fails. A normal
  batch costs one request;
- listing, exactly once, with the counts: the same transaction writes the day pages of the
  decisions the counted records INSERTed (shared.adapters.day_pages: rows of decided_at,
  decision_id, customer_id, ~30 bytes each compressed). They replace the `by-day` index, which cost
  a write unit per decision and another per state change; riding on a transaction paid per batch
  anyway, a 5 s batch of ~58 decisions (1 M events/day on ONE stream shard: see template.yaml on
  shards) lists them for ~0.1 write units each. Whatever
  makes a count exactly once makes its pages so: they are written by the same transactions. A
  transaction's pages are keyed by the first record IT counts (not the receipt's key), so the
  transactions that count one batch in parts never write the same page key.

Why the receipt makes the count exactly once. Lambda reads a shard in order and moves its
checkpoint only when a batch succeeds, or to the record the function reports as failed
(ReportBatchItemFailures: we report the first record we did not finish). So a batch handed to us
again starts either at the same first record as before (the invocation failed or timed out), or
at a record we reported failed, which we never counted: nothing before it is ever seen again.
- Same first record: its receipt says how far the earlier attempt counted; our transaction's
  condition (no receipt) fails, nothing of it is written, we read the receipt and count only the
  records after `through`, with the condition that the receipt still says `through`. No later
  batch can have counted a record after `through`: the checkpoint never moves back, and a shard
  has one batch in flight at a time (ParallelizationFactor 1), so the next batch only starts once
  this one is done. Such a batch is published again whole (it was not read which records an
  earlier attempt published): publishing is at least once either way.
- A reported failure: a new first record, no receipt, nothing of it counted: count from there.
- We count only the records before the first one we failed to publish, so "counted" implies
  "published", and the failed one starts the retry. Reporting a record other than the first moves
  the checkpoint past the ones before it, so it is done only once the receipt is known (our
  transaction passed, or it was read): a record an earlier attempt counted is never reported,
  since it would start a batch with no receipt and be counted twice; the report moves to the first
  record after `through` instead (those up to `through` were published before they were counted).
- The receipt's write is conditioned on what we know of it (absent, or `through` unchanged), so
  two invocations of one batch (none should overlap with ParallelizationFactor 1, but a timeout's
  retry may start while a slow attempt still runs) cannot both count it: the loser reads the
  receipt, drops what the winner counted, and tries again with a backoff (shared.adapters.retry).
- A batch whose counts and pages do not fit one transaction (100 items, 4 MB: a batch spanning
  ~50 days or more, which only a bulk replay of old traffic makes) is counted in several, in stream
  order, each taking the longest prefix of what is left that fits. Each moves the receipt from the
  `through` the previous one wrote (its condition) to its own last record: each is the step a
  batch handed again after a partial count takes, so a crash between them leaves a receipt saying
  how far the count went, and the retry counts from there. (Counter ADDs are not idempotent: no
  part is ever written without moving the receipt past it in the same transaction.)
This holds only if a retried batch never starts inside a range counted before, which bisecting a
failed batch would do: the mapping sets BisectBatchOnFunctionError false, and this use case never
raises after its transaction commits. Receipts expire after two days (a stream keeps records 24
hours, so no retry can need an older one).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from shared import faults
from shared.adapters import decision_log, retry
from shared.adapters.aws import AWS_ERRORS, retryable
from shared.adapters.clock import Clock, WallClock
from shared.adapters.day_pages import Row, rows_of
from shared.adapters.stats import Added, decision_counts, lifecycle_counts
from shared.domain.decision import Decision, State

COUNT_ATTEMPTS = 8

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


class Counting(Protocol):
    def counted_through(self, first: str) -> str | None: ...

    def add(
        self,
        first: str,
        read: str | None,
        through: str,
        counts: dict[str, Counter[str]],
        now: datetime,
        *,
        rows: Sequence[Row] = (),
        pages_from: str | None = None,
    ) -> Added: ...

    def fits(self, counts: dict[str, Counter[str]], rows: Sequence[Row]) -> bool: ...


@dataclass(frozen=True)
class Report:
    """One batch: how many records came, how many an earlier attempt had counted (known when its
    receipt was read, else 0), how many this one announced (again, for those) and counted, and the
    record to restart from (None: the whole batch is done)."""

    records: int
    already_done: int = 0
    announced: int = 0
    counted: int = 0
    retry_from: str | None = None

    def batch_item_failures(self) -> list[dict[str, str]]:
        return [{"itemIdentifier": self.retry_from}] if self.retry_from is not None else []


def _merged(effects: Sequence[Effect]) -> dict[str, Counter[str]]:
    merged: dict[str, Counter[str]] = {}
    for found in effects:
        for day, counts in found.counts.items():
            merged.setdefault(day, Counter()).update(counts)
    return merged


@dataclass
class _Receipt:
    """What this invocation knows of its batch's receipt: `through` as last read or assumed (None:
    no receipt), and whether that is known (our transaction passed its condition, or we read it)."""

    through: str | None = None
    known: bool = False

    def counted(self, change: Change) -> bool:
        """Whether an earlier attempt at this batch counted `change`."""
        return self.through is not None and change.position <= int(self.through)


@dataclass
class LogStreamUseCase:
    announcer: Announcing
    stats: Counting
    clock: Clock = field(default_factory=WallClock)

    def run(self, changes: Sequence[Change]) -> Report:
        """Publishes, then counts, one batch of one shard, in stream order. Transient AWS failures
        end the batch at the first record not finished (to retry from); other errors propagate
        before anything is counted (a bug: the invocation fails and Lambda retries the batch)."""
        if not changes:
            return Report(0)
        first = changes[0].sequence
        effects = [effect_of(change) for change in changes]
        finished = self._announce(effects)
        faults.checkpoint(faults.AFTER_PUBLISH)
        receipt = _Receipt()
        counted = self._count(first, receipt, list(changes[:finished]), effects[:finished])
        if counted is None:  # the counting kept failing: nothing of ours counted, retry all we did
            retry_from: str | None = first
        else:
            retry_from = self._retry_point(changes, finished, receipt)
        faults.checkpoint(faults.AFTER_COUNT)
        already = sum(1 for change in changes if receipt.counted(change))
        announced = sum(1 for e in effects[:finished] if e.announce is not None)
        report = Report(len(changes), already, announced, counted or 0, retry_from)
        if retry_from is not None:
            logger.warning("batch left for a retry", extra={"retry_from": retry_from, "done": finished})
        return report

    def _retry_point(self, changes: Sequence[Change], finished: int, receipt: _Receipt) -> str | None:
        """The first record neither published by us nor counted by an earlier attempt (None: the
        batch is done). Reporting any record but the first moves the checkpoint past those before
        it, so the receipt must be known first: it is read here when our transaction did not tell."""
        if finished == len(changes):
            return None
        if finished > 0 and not receipt.known:  # nothing counted by us, so nothing written: read it
            try:
                receipt.through, receipt.known = self.stats.counted_through(changes[0].sequence), True
            except AWS_ERRORS as error:
                if not retryable(error):
                    raise
                return changes[0].sequence  # the whole batch again: its receipt still decides
        for change in changes[finished:]:
            if not receipt.counted(change):
                return change.sequence
        return None

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

    def _count(self, first: str, receipt: _Receipt, done: list[Change], effects: list[Effect]) -> int | None:
        """Adds the counts (and day pages) of `done` once; how many records it counted, or None if
        it could not. Assumes no receipt until the transaction's condition says otherwise, then
        reads it (`receipt` is left as what the passing transaction found, or as last read). Counts
        in several transactions when one cannot hold it all, each moving the receipt on."""
        counted, failures = 0, 0
        while failures < COUNT_ATTEMPTS:
            if not any(_merged(effects).values()):
                return counted  # nothing (more) to add (admin records, or all counted before): no write
            size = self._fitting(effects)
            part = effects[:size]
            try:
                added = self.stats.add(
                    first,
                    receipt.through,
                    done[size - 1].sequence,
                    _merged(part),
                    self.clock.now(),
                    rows=[e.row for e in part if e.row is not None],
                    pages_from=done[0].sequence,
                )
            except AWS_ERRORS as error:
                if not retryable(error):
                    raise
                added = Added.CONTENDED
            if added is Added.DONE:
                receipt.through, receipt.known = done[size - 1].sequence, True
                counted += size
                done, effects = done[size:], effects[size:]
                if not done:
                    return counted
                continue
            failures += 1
            if added is Added.RECEIPT_MOVED:
                # An earlier (or concurrent) attempt at this batch counted part of it: keep only what it did not.
                try:
                    receipt.through, receipt.known = self.stats.counted_through(first), True
                except AWS_ERRORS as error:
                    if not retryable(error):
                        raise
                    return None
                kept = [(c, e) for c, e in zip(done, effects, strict=True) if not receipt.counted(c)]
                done, effects = [c for c, _ in kept], [e for _, e in kept]
                if not done:
                    return counted
                continue  # the condition failed on what we assumed, not on contention: no backoff
            retry.backoff(failures - 1)
        logger.warning("counting failed", extra={"sequence": first})
        return None

    def _fitting(self, effects: Sequence[Effect]) -> int:
        """How many leading effects one transaction can count: all of them but for a batch spanning
        many days (the longest prefix that fits, by bisection: a longer prefix never needs fewer
        items). One record always fits (the receipt, a counter and a page)."""

        def fits(size: int) -> bool:
            part = effects[:size]
            return self.stats.fits(_merged(part), [e.row for e in part if e.row is not None])

        if fits(len(effects)):
            return len(effects)
        low, high = 1, len(effects)  # fits(low); not fits(high)
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if fits(middle) else (low, middle)
        return low
