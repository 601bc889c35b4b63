"""Daily decision counters and day pages, kept as the decision log changes (the admin stats never
read the log).

The log count function (shared.usecases.log_count, the stream's second reader) adds each batch of
stream records to the counters in ONE transaction: a receipt item keyed by the batch's first
sequence number, with every record it counted (what makes the count exactly once, see that
module), one ADD per day touched, and the day pages listing the
decisions the counted records inserted (shared.adapters.day_pages). Decisions count on the day
they were decided (`total`, `a_<action>`, `r_<reason>`), releases and cancellations on the day
they happened (`rel_*`, `can_*`). A day's counts are spread over STATS_SHARDS items so concurrent
writers rarely touch the same one. Nothing is written to the log entries themselves.

Why the pages ride on the counting transaction: it is already paid for once per batch, and it is
what makes the count exactly once, so the pages are exactly once with it (no decision listed twice
or missed) for ~30 bytes a decision (compressed), where a `by-day` index entry cost a write unit per decision
and another with each state change (day_pages has the arithmetic). A transaction's pages are keyed
by the sequence number of the first record it counts (`pages_from`), not by the receipt's key: a
batch handed again after counting part of it writes the rest under another key, so its pages never
overwrite the earlier attempt's, even when both start at the same instant.

A transaction holds at most TRANSACT_ITEMS items and TRANSACT_BYTES bytes; `fits` says whether
the counts and rows of some records do, and the use case counts a batch in several transactions,
each moving the receipt on from where the previous one left it, when one would not (a batch
spanning many days: only a bulk replay of old traffic does that).
"""

from __future__ import annotations

import json
import random
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from itertools import pairwise
from typing import Any

from botocore.exceptions import ClientError

from shared.adapters import aws, day_pages
from shared.adapters.day_pages import Row
from shared.domain.decision import CancelReason, Decision

STATS_SHARDS = 32
# DynamoDB's limits on one TransactWriteItems: 100 items, 4 MB in all (a margin left for the
# attribute names and numbers `_bytes` approximates).
TRANSACT_ITEMS = 100
TRANSACT_BYTES = 3_900_000
DEFAULT_RETENTION = timedelta(days=400)
# The receipts of counted stream batches live beside the counters, in a partition of their own
# (never a date, so no day query reads it), for as long as a batch can be retried: a stream keeps
# records 24 hours, so two days is ample.
RECEIPT_DAY = "receipt"
RECEIPT_KEPT = timedelta(days=2)
COUNTED_THROUGH = "through"
COUNTED = "counted"  # every sequence number the receipt's batch counted, in order (compressed)


@dataclass(frozen=True)
class Receipt:
    """How far a batch that started at some record was counted: `through`, its last record
    counted, and `sequences`, every record it counted, in order (what lets a shorter batch handed
    later hand the rest on to the batch that follows it: LogCountUseCase)."""

    through: str
    sequences: tuple[str, ...] = ()


def sequences_value(sequences: Sequence[str]) -> dict[str, Any]:
    """Sequence numbers as stored: their differences in decimal, compressed (~a few bytes each)."""
    numbers = [int(s) for s in sequences]
    deltas = [numbers[0], *(b - a for a, b in pairwise(numbers))] if numbers else []
    return {"B": zlib.compress(",".join(str(d) for d in deltas).encode(), 9)}


def sequences_of(value: dict[str, Any] | None) -> tuple[str, ...]:
    if not value:
        return ()
    text = zlib.decompress(value["B"]).decode()
    found, total = [], 0
    for delta in text.split(",") if text else []:
        total += int(delta)
        found.append(str(total))
    return tuple(found)


def decision_counts(decision: Decision) -> Counter[str]:
    """Counter names of one decision, on its decided_at day."""
    return Counter({"total": 1, f"a_{decision.action}": 1, f"r_{decision.reason}": 1})


def lifecycle_counts(released: Sequence[Decision] = (), cancelled: Sequence[CancelReason | None] = ()) -> Counter[str]:
    """Counter names of releases (`rel_total`, `rel_<action>`) and cancellations (`can_total`, `can_<REASON>`)."""
    counts: Counter[str] = Counter()
    for decision in released:
        counts["rel_total"] += 1
        counts[f"rel_{decision.action}"] += 1
    for reason in cancelled:
        counts["can_total"] += 1
        counts[f"can_{reason}"] += 1
    return counts


def _counter_update(table: str, day: str, shard: int, counts: Counter[str], now: datetime) -> dict[str, Any]:
    names = {f"#c{i}": name for i, name in enumerate(sorted(counts))}
    values: dict[str, Any] = {f":c{i}": {"N": str(counts[name])} for i, name in enumerate(sorted(counts))}
    values[":expires"] = {"N": str(int((now + timedelta(days=800)).timestamp()))}
    return {
        "TableName": table,
        "Key": {"day": {"S": day}, "shard": {"S": f"{shard:02d}"}},
        "UpdateExpression": "ADD "
        + ", ".join(f"#c{i} :c{i}" for i in range(len(names)))
        + " SET expires_at = if_not_exists(expires_at, :expires)",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def receipt_key(first: str) -> dict[str, Any]:
    """A batch's receipt: its first sequence number, zero-padded so receipts sort in stream order."""
    return {"day": {"S": RECEIPT_DAY}, "shard": {"S": first.zfill(40)}}


def _receipt_put(
    table: str, first: str, read: str | None, through: str, now: datetime, *, sequences: Sequence[str] = ()
) -> dict[str, Any]:
    """The receipt, written only if it is still what was read (absent, or counted through `read`)."""
    put: dict[str, Any] = {
        "TableName": table,
        "Item": {
            **receipt_key(first),
            COUNTED_THROUGH: {"S": through},
            COUNTED: sequences_value(sequences),
            "expires_at": {"N": str(int((now + RECEIPT_KEPT).timestamp()))},
        },
    }
    if read is None:
        put["ConditionExpression"] = "attribute_not_exists(#day)"
        put["ExpressionAttributeNames"] = {"#day": "day"}
    else:
        put["ConditionExpression"] = "#through = :read"
        put["ExpressionAttributeNames"] = {"#through": COUNTED_THROUGH}
        put["ExpressionAttributeValues"] = {":read": {"S": read}}
    return put


# Cancellation reasons that pass if the transaction is tried again a little later.
_PASSING = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
)


class Added(Enum):
    """How adding a batch's counts went."""

    DONE = "done"  # the receipt and every counter moved together
    RECEIPT_MOVED = "receipt_moved"  # someone counted part of the batch meanwhile: nothing written, read again
    CONTENDED = "contended"  # a concurrent write to one of the items: nothing written, back off and retry


def _bytes(items: Sequence[dict[str, Any]]) -> int:
    """An upper bound of the items' size as DynamoDB counts it (names and values, UTF-8)."""
    # A binary value (a page's compressed rows) counts its length in bytes.
    return sum(
        len(json.dumps(item, separators=(",", ":"), default=lambda raw: "b" * len(raw)).encode()) for item in items
    )


class Stats(aws.AwsPort):
    def __init__(self, stats_table: str, client: Any = None, retention: timedelta = DEFAULT_RETENTION) -> None:
        self.stats_table = stats_table
        self.retention = retention  # the log's: a page expires with the last entry it lists
        super().__init__(client)

    def _items(
        self,
        first: str,
        read: str | None,
        through: str,
        counts: Mapping[str, Counter[str]],
        *,
        rows: Sequence[Row],
        now: datetime,
        pages_from: str,
        sequences: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        shard = random.randrange(STATS_SHARDS)  # noqa: S311 - spreading load, not security
        receipt = _receipt_put(self.stats_table, first, read, through, now, sequences=sequences)
        items: list[dict[str, Any]] = [{"Put": receipt}]
        items += [
            {"Update": _counter_update(self.stats_table, day, shard, names, now)}
            for day, names in sorted(counts.items())
            if names
        ]
        return items + day_pages.page_puts(self.stats_table, pages_from, rows, self.retention)

    def fits(self, counts: Mapping[str, Counter[str]], rows: Sequence[Row], sequences: Sequence[str] = ()) -> bool:
        """Whether one transaction can add these counts, list these rows and record these sequences."""
        now = datetime.now(UTC)
        items = self._items("0", None, "0", counts, rows=rows, now=now, pages_from="0", sequences=sequences)
        return len(items) <= TRANSACT_ITEMS and _bytes(items) <= TRANSACT_BYTES

    def receipt_of(self, first: str) -> Receipt | None:
        """How far a batch that started at `first` was counted, None if none was."""
        answer = self.client.get_item(TableName=self.stats_table, Key=receipt_key(first), ConsistentRead=True)
        item = answer.get("Item")
        if not item:
            return None
        return Receipt(str(item[COUNTED_THROUGH]["S"]), sequences_of(item.get(COUNTED)))

    def forward(self, first: str, receipt: Receipt, now: datetime) -> bool:
        """Writes `receipt` (records counted from `first` on) for the batch that starts at `first`,
        unless one is there already (then it says at least as much: only the same earlier attempt
        could have counted from `first`). True if the receipt there says at least `receipt.through`."""
        put = _receipt_put(self.stats_table, first, None, receipt.through, now, sequences=receipt.sequences)
        try:
            self.client.put_item(**put)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            there = self.receipt_of(first)
            return there is not None and int(there.through) >= int(receipt.through)
        return True

    def add(
        self,
        first: str,
        read: str | None,
        through: str,
        counts: Mapping[str, Counter[str]],
        now: datetime,
        *,
        rows: Sequence[Row] = (),
        pages_from: str | None = None,
        sequences: Sequence[str] = (),
    ) -> Added:
        """Adds `counts` (day -> counter names), lists `rows` on day pages keyed by `pages_from`
        (the first record counted here; default `first`), and moves the receipt of the batch that
        starts at `first` from `read` to `through` (with `sequences`, all it has counted), in one
        transaction."""
        pages_from = pages_from or first
        items = self._items(
            first, read, through, counts, rows=rows, now=now, pages_from=pages_from, sequences=sequences
        )
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons") or [{}]
            if reasons[0].get("Code") == "ConditionalCheckFailed":
                return Added.RECEIPT_MOVED
            codes = {r.get("Code") for r in reasons} - {None, "None"}
            if codes <= _PASSING:
                return Added.CONTENDED
            # A validation error, an item too large: no retry mends it, so say so at once (the
            # invocation fails and its alarm fires) instead of backing off as if it were busy.
            raise
        return Added.DONE

    def days(self, first: date, last: date) -> list[dict[str, Any]]:
        found = []
        day = first
        while day <= last:
            answer = self.client.query(
                TableName=self.stats_table,
                KeyConditionExpression="#d = :d",
                ExpressionAttributeNames={"#d": "day"},
                ExpressionAttributeValues={":d": {"S": day.isoformat()}},
            )
            totals: Counter[str] = Counter()
            for item in answer["Items"]:
                for name, value in item.items():
                    if name.startswith(("a_", "r_", "rel_", "can_")) or name == "total":
                        totals[name] += int(value["N"])
            found.append(summary(day.isoformat(), totals))
            day += timedelta(days=1)
        return found


def summary(label: str, totals: Counter[str]) -> dict[str, Any]:
    total = totals["total"]
    return {
        "day": label,
        "total": total,
        "by_action": {k[2:]: v for k, v in sorted(totals.items()) if k.startswith("a_")},
        "by_reason": {k[2:]: v for k, v in sorted(totals.items()) if k.startswith("r_")},
        "suppression_rate": round(totals["a_none"] / total, 4) if total else None,
        # Lifecycle, counted when it happens (a release or cancellation may fall on a later day).
        "released": totals["rel_total"],
        "released_by_action": {
            k[4:]: v for k, v in sorted(totals.items()) if k.startswith("rel_") and k != "rel_total"
        },
        "cancelled": totals["can_total"],
        "cancelled_by_reason": {
            k[4:]: v for k, v in sorted(totals.items()) if k.startswith("can_") and k != "can_total"
        },
    }
