"""Daily decision counters, kept as the decision log changes (the admin stats never read the log).

The log's stream function (shared.usecases.log_stream) adds each batch of stream records to the
counters in ONE transaction: a receipt item keyed by the batch's first sequence number (what makes
the count exactly once, see that module) and one ADD per day touched. Decisions count on the day
they were decided (`total`, `a_<action>`, `r_<reason>`), releases and cancellations on the day
they happened (`rel_*`, `can_*`). A day's counts are spread over STATS_SHARDS items so concurrent
writers rarely touch the same one. Nothing is written to the log entries themselves.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError

from shared.adapters import aws
from shared.domain.decision import CancelReason, Decision

STATS_SHARDS = 32
# The receipts of counted stream batches live beside the counters, in a partition of their own
# (never a date, so no day query reads it), for as long as a batch can be retried: a stream keeps
# records 24 hours, so two days is ample.
RECEIPT_DAY = "receipt"
RECEIPT_KEPT = timedelta(days=2)
COUNTED_THROUGH = "through"


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


def _receipt_put(table: str, first: str, read: str | None, through: str, now: datetime) -> dict[str, Any]:
    """The receipt, written only if it is still what was read (absent, or counted through `read`)."""
    put: dict[str, Any] = {
        "TableName": table,
        "Item": {
            **receipt_key(first),
            COUNTED_THROUGH: {"S": through},
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


class Added(Enum):
    """How adding a batch's counts went."""

    DONE = "done"  # the receipt and every counter moved together
    RECEIPT_MOVED = "receipt_moved"  # someone counted part of the batch meanwhile: nothing written, read again
    CONTENDED = "contended"  # a concurrent write to one of the items: nothing written, back off and retry


class Stats(aws.AwsPort):
    def __init__(self, stats_table: str, client: Any = None) -> None:
        self.stats_table = stats_table
        super().__init__(client)

    def counted_through(self, first: str) -> str | None:
        """The last sequence number counted by a batch that started at `first`, None if none did."""
        answer = self.client.get_item(TableName=self.stats_table, Key=receipt_key(first), ConsistentRead=True)
        found = answer.get("Item", {}).get(COUNTED_THROUGH, {}).get("S")
        return str(found) if found is not None else None

    def add(
        self, first: str, read: str | None, through: str, counts: Mapping[str, Counter[str]], now: datetime
    ) -> Added:
        """Adds `counts` (day -> counter names) and moves the receipt of the batch that starts at
        `first` from `read` to `through`, in one transaction."""
        shard = random.randrange(STATS_SHARDS)  # noqa: S311 - spreading load, not security
        items: list[dict[str, Any]] = [{"Put": _receipt_put(self.stats_table, first, read, through, now)}]
        items += [
            {"Update": _counter_update(self.stats_table, day, shard, names, now)}
            for day, names in sorted(counts.items())
            if names
        ]
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons") or [{}]
            if reasons[0].get("Code") == "ConditionalCheckFailed":
                return Added.RECEIPT_MOVED
            return Added.CONTENDED
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
