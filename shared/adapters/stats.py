"""Daily decision counters, kept as decisions are made (the admin stats never read the log).

After a batch is committed and published, one transaction adds the batch's counts to a counter
item and marks each decision's log entry as counted. The marks make it exactly once: a redelivered
decision is already marked, its condition fails, and it is left out of the retry. A day's counts
are spread over STATS_SHARDS items so concurrent deciders rarely touch the same one.

The same update takes the entry out of the outbox (decision_log.OUTBOX_SHARD): only published
decisions are counted, so "counted" means "published and counted", and what the outbox still
lists is exactly what the outbox function must publish.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from shared.adapters import aws, decision_log, retry
from shared.domain.decision import CancelReason, Decision, format_utc

STATS_SHARDS = 32
ATTEMPTS = 6


def _names(decisions: Sequence[Decision]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for decision in decisions:
        counts["total"] += 1
        counts[f"a_{decision.action}"] += 1
        counts[f"r_{decision.reason}"] += 1
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


def lifecycle_update(table: str, counts: Counter[str], now: datetime) -> dict[str, Any]:
    """The counter update for releases and cancellations, on the day they happen. It rides in the
    same transaction as the state change itself (shared.adapters.store), whose conditions make the
    count exactly once, whatever the retries, repeated firings and racing deciders."""
    shard = random.randrange(STATS_SHARDS)  # noqa: S311 - spreading load, not security
    return _counter_update(table, f"{now:%Y-%m-%d}", shard, counts, now)


def _mark_counted(log_table: str, decision: Decision, now: datetime) -> dict[str, Any]:
    return {
        "TableName": log_table,
        "Key": decision_log.key(decision.decision_id),
        "UpdateExpression": f"SET counted_at = :now REMOVE {decision_log.OUTBOX_SHARD}",
        "ConditionExpression": f"attribute_exists({decision_log.KEY}) AND attribute_not_exists(counted_at)",
        "ExpressionAttributeValues": {":now": {"S": format_utc(now)}},
    }


class Stats(aws.AwsPort):
    def __init__(self, stats_table: str, log_table: str, client: Any = None) -> None:
        self.stats_table = stats_table
        self.log_table = log_table
        super().__init__(client)

    def count(self, decisions: Sequence[Decision], now: datetime) -> list[Decision]:
        """Adds these decisions to the counters once; returns the ones not counted yet (to retry)."""
        pending = list({d.decision_id: d for d in decisions}.values())
        for attempt in range(ATTEMPTS):
            if not pending:
                return []
            by_day: dict[str, list[Decision]] = defaultdict(list)
            for decision in pending:
                by_day[f"{decision.decided_at:%Y-%m-%d}"].append(decision)
            shard = random.randrange(STATS_SHARDS)  # noqa: S311 - spreading load, not security
            items = [{"Update": _mark_counted(self.log_table, d, now)} for d in pending]
            items += [
                {"Update": _counter_update(self.stats_table, day, shard, _names(ds), now)} for day, ds in by_day.items()
            ]
            try:
                self.client.transact_write_items(TransactItems=items)
                return []
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                reasons = error.response.get("CancellationReasons", [])
                counted = {
                    pending[i].decision_id
                    for i, reason in enumerate(reasons[: len(pending)])
                    if reason.get("Code") == "ConditionalCheckFailed"
                }
                pending = [d for d in pending if d.decision_id not in counted]
                if not counted:
                    # A conflict with a concurrent counter update: wait, then try another shard.
                    retry.backoff(attempt)
        return pending

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
