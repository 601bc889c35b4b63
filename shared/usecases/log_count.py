"""Counting the decision log's stream, exactly once, and listing its decisions on day pages
(LogCountFunction; publishing is the other reader of the stream, shared.usecases.log_stream).

- counting, without marking the log entries: ONE TransactWriteItems per batch adds the batch's
  counts (decisions on their decided_at day, releases and cancellations on their
  state_changed_at day) and writes a receipt keyed by the batch's FIRST sequence number, holding
  `through`, the last sequence number it counted. The receipt is not read first: a batch is
  almost always new, so the transaction assumes no receipt (its condition: none exists) and the
  receipt is read only when that condition fails. A normal batch costs one request;
- listing, with the counts: the same transaction writes the day pages of the decisions the
  counted records INSERTed (shared.adapters.day_pages: rows of decided_at, decision_id,
  customer_id, ~30 bytes each compressed). They replace a `by-day` index, which cost a write unit
  per decision and another per state change. Whatever makes a count exactly once makes its pages
  so: they are written by the same transactions. A transaction's pages are keyed by the first
  record IT counts (not the receipt's key), so the transactions that count one batch in parts
  never write the same page key.

Why a mapping of its own, with a 300 s window: the transaction is paid per batch (receipt,
counter, pages: ~6 write units), and a stream has about one shard per table partition, each
batched apart. At 1 M events a day over ~30 partitions, a shard sees ~0.4 records a second: a 5 s
batch holds ~2 (3 write units an event), a 300 s batch ~116 (~0.05). Nothing waits on a count: the
stats and day listings are up to the window behind, while publishing (its own mapping) stays at
seconds, and lookups by customer or id read the log itself.

Why the receipt makes the count exactly once. Lambda reads a shard in order and moves its
checkpoint only when a batch succeeds, or to the record the function reports as failed
(ReportBatchItemFailures). This use case reports only a batch's FIRST record (the whole batch
again), so a batch handed to us again starts at the same first record as before: nothing counted
before it is ever seen again, and its receipt says how far an earlier attempt counted; our
transaction's condition (no receipt) fails, nothing of it is written, we read the receipt and count
only the records after `through`, with the condition that the receipt still says `through`. No
later batch can have counted a record after `through`: the checkpoint never moves back, and a shard
has one batch in flight at a time (ParallelizationFactor 1), so the next batch only starts once
this one is done. A longer batch from the same first record is covered the same way. A shorter
one (its batch size lowered meanwhile, or a duplicate delivery cut elsewhere) ends before the
receipt's `through`, so the batch after it would start at a record counted already, under a key
with no receipt: the receipt therefore lists every record it counted, and the shorter batch hands
the rest on, writing a receipt keyed by the earlier attempt's first record after its own last (the
next batch's first: a shard's batches are consecutive runs) before it reports success (`_hand_on`).
- The receipt's write is conditioned on what we know of it (absent, or `through` unchanged), so
  two invocations of one batch (none should overlap with ParallelizationFactor 1, but a timeout's
  retry may start while a slow attempt still runs) cannot both count it: the loser reads the
  receipt, drops what the winner counted, and tries again with a backoff (shared.adapters.retry).
- A batch whose counts and pages do not fit one transaction (100 items, 4 MB: a batch spanning
  ~50 days, or many pages) is counted in several, in stream order, each taking the longest prefix
  of what is left that fits. Each moves the receipt from the `through` the previous one wrote (its
  condition) to its own last record: each is the step a batch handed again after a partial count
  takes, so a crash between them leaves a receipt saying how far the count went, and the retry
  counts from there. (Counter ADDs are not idempotent: no part is ever written without moving the
  receipt past it in the same transaction.)
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
from typing import Protocol

from aws_lambda_powertools import Logger

from shared import faults
from shared.adapters import retry
from shared.adapters.aws import AWS_ERRORS, retryable
from shared.adapters.clock import Clock, WallClock
from shared.adapters.day_pages import Row
from shared.adapters.stats import Added, Receipt
from shared.usecases.log_stream import Change, Effect, effect_of

COUNT_ATTEMPTS = 8

logger = Logger(child=True)


class Counting(Protocol):
    def receipt_of(self, first: str) -> Receipt | None: ...

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
        sequences: Sequence[str] = (),
    ) -> Added: ...

    def fits(self, counts: dict[str, Counter[str]], rows: Sequence[Row], sequences: Sequence[str] = ()) -> bool: ...

    def forward(self, first: str, receipt: Receipt, now: datetime) -> bool: ...


@dataclass(frozen=True)
class Report:
    """One batch: how many records came, how many an earlier attempt had counted (known when its
    receipt was read, else 0), how many this one counted, and the record to restart from (None:
    the whole batch is done)."""

    records: int
    already_done: int = 0
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
    """What this invocation knows of its batch's receipt: `through` as last read, written or
    assumed (None: no receipt)."""

    through: str | None = None
    earlier: str | None = None  # `through` as an earlier attempt left it, when read
    sequences: tuple[str, ...] = ()  # every record counted through `through`, in order

    def read(self, found: Receipt | None) -> None:
        self.through = found.through if found else None
        self.sequences = found.sequences if found else ()
        self.earlier = self.earlier or self.through

    def counted_before(self, change: Change) -> bool:
        """Whether an earlier attempt at this batch counted `change` (as far as we read)."""
        return self.earlier is not None and change.position <= int(self.earlier)

    def counted(self, change: Change) -> bool:
        """Whether `change` is counted (by an earlier attempt, or by this one)."""
        return self.through is not None and change.position <= int(self.through)


@dataclass
class LogCountUseCase:
    stats: Counting
    clock: Clock = field(default_factory=WallClock)

    def run(self, changes: Sequence[Change]) -> Report:
        """Counts one batch of one shard, and lists its decisions on day pages, exactly once.
        Transient AWS failures that outlast the attempts leave the whole batch for a retry (its
        receipt then says what was counted); other errors propagate before anything is counted (a
        bug: the invocation fails and Lambda retries the batch)."""
        if not changes:
            return Report(0)
        first = changes[0].sequence
        effects = [effect_of(change) for change in changes]
        receipt = _Receipt()
        counted = self._count(first, receipt, list(changes), effects)
        retry_from = first if counted is None or not self._hand_on(receipt, changes[-1]) else None
        faults.checkpoint(faults.AFTER_COUNT)
        already = sum(1 for change in changes if receipt.counted_before(change))
        if retry_from is not None:
            logger.warning("batch left for a retry", extra={"retry_from": retry_from})
        return Report(len(changes), already, counted or 0, retry_from)

    def _hand_on(self, receipt: _Receipt, last: Change) -> bool:
        """When an earlier, longer attempt at this batch counted past its last record (Lambda handed
        it again shorter), the batch that follows starts at a record counted already, under a key
        with no receipt: this writes that receipt, so it counts only what comes after. Its first
        record is the earlier attempt's first after ours (a shard's batches are consecutive runs).
        False if it could not be written (the batch is then handed again)."""
        if receipt.through is None or int(receipt.through) <= last.position:
            return True
        later = tuple(s for s in receipt.sequences if int(s) > last.position)
        if not later:
            logger.warning("receipt without its records: cannot hand on", extra={"sequence": last.sequence})
            return True
        try:
            return self.stats.forward(later[0], Receipt(receipt.through, later), self.clock.now())
        except AWS_ERRORS as error:
            if not retryable(error):
                raise
            return False

    def _count(self, first: str, receipt: _Receipt, done: list[Change], effects: list[Effect]) -> int | None:
        """Adds the counts (and day pages) of `done` once; how many records it counted, or None if
        it could not. Assumes no receipt until the transaction's condition says otherwise, then
        reads it (`receipt` is left as what the passing transaction found, or as last read). Counts
        in several transactions when one cannot hold it all, each moving the receipt on."""
        counted, failures = 0, 0
        while failures < COUNT_ATTEMPTS:
            if not any(_merged(effects).values()):
                return counted  # nothing (more) to add (admin records, or all counted before): no write
            size = self._fitting(effects, [c.sequence for c in done], receipt.sequences)
            part = effects[:size]
            sequences = (*receipt.sequences, *(c.sequence for c in done[:size]))
            try:
                added = self.stats.add(
                    first,
                    receipt.through,
                    done[size - 1].sequence,
                    _merged(part),
                    self.clock.now(),
                    rows=[e.row for e in part if e.row is not None],
                    pages_from=done[0].sequence,
                    sequences=sequences,
                )
            except AWS_ERRORS as error:
                if not retryable(error):
                    raise
                added = Added.CONTENDED
            if added is Added.DONE:
                receipt.through, receipt.sequences = done[size - 1].sequence, sequences
                counted += size
                done, effects = done[size:], effects[size:]
                if not done:
                    return counted
                continue
            failures += 1
            if added is Added.RECEIPT_MOVED:
                # An earlier (or concurrent) attempt at this batch counted part of it: keep only what it did not.
                try:
                    receipt.read(self.stats.receipt_of(first))
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

    def _fitting(self, effects: Sequence[Effect], sequences: Sequence[str], counted: Sequence[str]) -> int:
        """How many leading effects one transaction can count: all of them but for a batch spanning
        many days (the longest prefix that fits, by bisection: a longer prefix never needs fewer
        items). One record always fits (the receipt, a counter and a page)."""

        def fits(size: int) -> bool:
            part = effects[:size]
            rows = [e.row for e in part if e.row is not None]
            return self.stats.fits(_merged(part), rows, (*counted, *sequences[:size]))

        if fits(len(effects)):
            return len(effects)
        low, high = 1, len(effects)  # fits(low); not fits(high)
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if fits(middle) else (low, middle)
        return low
