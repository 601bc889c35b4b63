"""Reading the decision log back for a simulation: a partition's decisions of a window, and the
history of its customers before it. Indexes only, never a scan.

- Decisions of the window: index `by-day` (day_shard, decided_at), shard p % 16 of each day for
  partition p (decision_log.day_shard hashes the customer). A plan of a large log splits each shard
  into `sub_partitions` by a finer hash of the customer (`partition_of`): partition p is then the
  customers of shard p % 16 whose sub-partition is p // 16; it reads its shard's pages of each day
  and keeps its own customers, dropped by their id before anything else of the item is decoded (so
  a partition's memory divides by the sub-partitions while its day reads repeat once per
  sub-partition). Days before decision_log.CUSTOMER_SHARDED_SINCE were sharded by decision id: for
  those, every shard of the day is read and only the partition's customers are kept.
- History (`histories`): one Query per customer on index `by-customer` over [warm-up start,
  window end): the approvals before the window (to warm the ledger), the outcome records and the
  admin records (opt-outs set and lifted). Outcome and admin records have no day shard, so the
  customer's own partition of the index is where they are; the same Query brings the customer's
  earlier approvals at no extra request.

Items are decoded without validating a Decision model per item: only what a replay reads.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from shared.adapters import aws, decision_log, outcome_log
from shared.domain.decision import Action, DecisionInput, State, format_utc
from shared.domain.events import Channel, Outcome
from shared.domain.outcomes import FollowUpOutcome
from shared.domain.replay import LoggedDecision, PreferenceChange

THREADS = 16
_T = TypeVar("_T")
_R = TypeVar("_R")
PREFERENCES_CHANGED = "preferences_changed"
_STATES = {s.value: s for s in State}
_ACTIONS = {a.value: a for a in Action}
_CHANNELS = {c.value: c for c in Channel}
_OUTCOMES = {o.value: o for o in Outcome}


def partition_of(customer_id: str, sub_partitions: int = 1) -> int:
    """The customer's partition when each day shard is split in `sub_partitions`: its shard
    (decision_log.customer_shard, the low part of the hash) + 16 x its sub-partition (the hash's
    higher part, independent of the shard). With 1 sub-partition it is the customer's shard."""
    if sub_partitions == 1:
        return decision_log.customer_shard(customer_id)
    # The same digest as customer_shard (a test holds them together), hashed once per item read.
    digest = int(hashlib.sha256(customer_id.encode()).hexdigest(), 16)
    shard, higher = digest % decision_log.DAY_SHARDS, digest // decision_log.DAY_SHARDS
    return shard + decision_log.DAY_SHARDS * (higher % sub_partitions)


@dataclass(frozen=True)
class DayRead:
    """One Query stream: a day's shard, the window's part of that day, and whether every
    customer it returns belongs to the partitions read (or must be checked: days sharded by
    decision, or a shard split into sub-partitions)."""

    day: date
    shard: int
    start: datetime
    end: datetime
    keep: frozenset[int] | None = None  # partitions (partition_of) to keep; None keeps every item
    sub_partitions: int = 1

    def request(self, table: str) -> dict[str, Any]:
        return {
            "TableName": table,
            "IndexName": decision_log.BY_DAY,
            "KeyConditionExpression": "day_shard = :shard AND decided_at BETWEEN :start AND :end",
            "ExpressionAttributeValues": {
                ":shard": {"S": f"{self.day.isoformat()}#{self.shard:02d}"},
                ":start": {"S": format_utc(self.start)},
                ":end": {"S": format_utc(self.end)},
            },
        }


def day_reads(
    start: datetime,
    end: datetime,
    partitions: Iterable[int],
    sharded_since: date = decision_log.CUSTOMER_SHARDED_SINCE,
    sub_partitions: int = 1,
) -> list[DayRead]:
    """The Queries that return exactly the decisions of these partitions' customers in [start, end]
    (partition p: shard p % 16, sub-partition p // 16 of `sub_partitions`)."""
    shards = decision_log.DAY_SHARDS
    wanted = frozenset(partitions)
    every = wanted == frozenset(range(shards * sub_partitions))
    by_shard: dict[int, set[int]] = {}
    for p in wanted:
        by_shard.setdefault(p % shards, set()).add(p)
    reads = []
    day = start.date()
    while day <= end.date():
        first = max(start, datetime.combine(day, datetime.min.time(), UTC))
        last = min(end, datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC) - timedelta(microseconds=1))
        if every:
            reads += [DayRead(day, s, first, last) for s in range(shards)]
        elif day >= sharded_since:
            for s, mine in sorted(by_shard.items()):
                whole = len(mine) == sub_partitions  # every sub-partition of the shard: keep all
                reads.append(DayRead(day, s, first, last, None if whole else frozenset(mine), sub_partitions))
        else:
            reads += [DayRead(day, s, first, last, wanted, sub_partitions) for s in range(shards)]
        day += timedelta(days=1)
    return reads


@dataclass(frozen=True)
class History:
    approvals: list[LoggedDecision]
    outcomes: list[FollowUpOutcome]
    changes: list[PreferenceChange]


class LogReader(aws.AwsPort):
    """The simulation's reads of the decision log. Counts its Queries and items (for progress and
    the bench); Queries run on THREADS threads, since each waits on the network."""

    def __init__(self, table: str, client: Any = None, threads: int = THREADS) -> None:
        self.table = table
        self.threads = threads
        self.queries = 0
        self.items = 0
        super().__init__(client)

    def decisions(self, reads: Sequence[DayRead]) -> Iterator[LoggedDecision]:
        """The decisions these Queries return, decoded (in no particular order)."""

        def read(one: DayRead) -> list[LoggedDecision]:
            found = []
            for item in self._pages(one.request(self.table)):
                # The customer id first: another partition's item is dropped before it is decoded.
                if one.keep is None or partition_of(item["customer_id"]["S"], one.sub_partitions) in one.keep:
                    found.append(decode(item))
            return found

        yield from self._parallel(read, reads)

    def histories(
        self, customers: Sequence[str], start: datetime, window_start: datetime, end: datetime
    ) -> Iterator[tuple[str, History]]:
        """For each customer (in the order given), its approvals in [start, window_start) and its
        outcome records and opt-out changes in [start, end]. One Query (a page, usually) each:
        the window's approvals come back too, and are skipped undecoded (the day index gave them)."""
        before = format_utc(window_start)
        bounds = {":start": {"S": format_utc(start)}, ":end": {"S": format_utc(end)}, ":none": {"S": str(Action.NONE)}}

        def read(customer: str) -> list[tuple[str, History]]:
            request = {
                "TableName": self.table,
                "IndexName": decision_log.BY_CUSTOMER,
                "KeyConditionExpression": "customer_id = :c AND decided_at BETWEEN :start AND :end",
                # Suppressions never took a slot: only approvals and the other records come back.
                "FilterExpression": "attribute_exists(record_type) OR #action <> :none",
                "ExpressionAttributeNames": {"#action": "action"},
                "ExpressionAttributeValues": {":c": {"S": customer}, **bounds},
            }
            history = History([], [], [])
            for item in self._pages(request):
                if outcome_log.is_outcome_record(item):
                    outcome = _outcome(item)
                    if outcome is not None:
                        history.outcomes.append(outcome)
                elif decision_log.is_admin_record(item):
                    change = _preference_change(item)
                    if change is not None:
                        history.changes.append(change)
                elif "record_type" not in item and item["decided_at"]["S"] < before:
                    history.approvals.append(decode(item))
            return [(customer, history)]

        yield from self._parallel(read, customers)

    def _pages(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        while True:
            self.queries += 1
            page = self.client.query(**request)
            self.items += len(page["Items"])
            yield from page["Items"]
            if "LastEvaluatedKey" not in page:
                return
            request = {**request, "ExclusiveStartKey": page["LastEvaluatedKey"]}

    def _parallel(self, read: Callable[[_T], list[_R]], work: Sequence[_T]) -> Iterator[_R]:
        if len(work) <= 1 or self.threads <= 1:
            for one in work:
                yield from read(one)
            return
        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            for batch in pool.map(read, work):
                yield from batch


def decode(item: dict[str, Any]) -> LoggedDecision:
    """A decision log entry, as the replay reads it. Its lifecycle comes from the item's own
    attributes (a release or a cancellation updates those, not `doc`)."""
    doc = _doc_fields(item)
    decided_at = _time(item["decided_at"]["S"])
    state_text = item.get(decision_log.STATE, {}).get("S")
    action = _ACTIONS[item["action"]["S"]]
    if state_text is None:  # logged before the lifecycle existed: released at once, or suppressed
        state = State.SUPPRESSED if action is Action.NONE else State.RELEASED
    else:
        state = _STATES[state_text]
    changed = item.get(decision_log.STATE_CHANGED_AT, {}).get("S")
    send_at = doc.get("send_at")
    return LoggedDecision(
        decision_id=item[decision_log.KEY]["S"],
        event_id=item["event_id"]["S"],
        interaction_id=doc["interaction_id"],
        customer_id=item["customer_id"]["S"],
        decided_at=decided_at,
        action=action,
        reason=item["reason"]["S"],
        policy_version=int(item["policy_version"]["N"]),
        state=state,
        state_reason=item.get(decision_log.STATE_REASON, {}).get("S"),
        state_changed_at=_time(changed) if changed else decided_at,
        send_at=_time(send_at) if send_at else None,
        inputs=_inputs(doc["input"]),
    )


_JSON = json.JSONDecoder()


def _doc_fields(item: dict[str, Any]) -> dict[str, Any]:
    """interaction_id, send_at and input of the entry's `doc`. The JSON form (Decision's
    model_dump_json) is read three values at a time, not whole: its rule-by-rule explanation is
    most of its bytes and none of what a replay needs. interaction_id is its first top-level
    field of that name, send_at and input its last (they follow the explanation, whose figures
    may name a send_at; no JSON string holds an unescaped quote, so no value can fake a key).
    Any other form goes through decision_log.replay_fields, the one place that knows it."""
    text = item["doc"]["S"]
    found = _json_fields(text) if text.startswith("{") else None
    if found is not None:
        return found
    return decision_log.replay_fields(item)


def _json_fields(text: str) -> dict[str, Any] | None:
    positions = (text.find('"interaction_id":'), text.rfind('"send_at":'), text.rfind('"input":'))
    if min(positions) < 0:
        return None
    try:
        interaction_id = _JSON.raw_decode(text, positions[0] + len('"interaction_id":'))[0]
        send_at = _JSON.raw_decode(text, positions[1] + len('"send_at":'))[0]
        given = _JSON.raw_decode(text, positions[2] + len('"input":'))[0]
    except ValueError:
        return None
    if not (
        isinstance(interaction_id, str)
        and (send_at is None or isinstance(send_at, str))
        and isinstance(given, dict)
        and isinstance(given.get("closed_at"), str)
        and given.get("channel") in _CHANNELS
        and given.get("outcome") in _OUTCOMES
    ):
        return None
    return {"interaction_id": interaction_id, "send_at": send_at, "input": given}


_INPUT_FIELDS = dict.fromkeys(DecisionInput.model_fields)


def _inputs(given: dict[str, Any]) -> dict[str, Any]:
    """Every input field (None when absent), typed as the model types them (the engine compares
    enums by identity)."""
    fields = {**_INPUT_FIELDS, **given}
    fields["channel"] = _CHANNELS[fields["channel"]]
    fields["outcome"] = _OUTCOMES[fields["outcome"]]
    fields["closed_at"] = _time(fields["closed_at"])
    return fields


def _time(text: str) -> datetime:
    """The log's fixed-width UTC text (2026-11-23T10:00:00.000000Z) as an aware datetime in UTC."""
    moment = datetime.fromisoformat(text)
    return moment if text.endswith("Z") else moment.astimezone(UTC)


def _outcome(item: dict[str, Any]) -> FollowUpOutcome | None:
    try:
        return outcome_log.from_item(item)[1]
    except ValueError:
        return None  # a record this contract version cannot read: left out of the what-if


def _preference_change(item: dict[str, Any]) -> PreferenceChange | None:
    record = json.loads(item["doc"]["S"])
    if record.get("action") != PREFERENCES_CHANGED:
        return None
    details = record.get("details") or {}
    return PreferenceChange(
        customer_id=str(record["customer_id"]),
        at=_time(record["at"]),
        kinds=tuple(sorted(details.get("after") or ())),
        source=str(details.get("source") or "admin"),
    )


class ItemsReader(LogReader):
    """The same reads over log items held in memory, answering as the indexes would (the bench
    and tests replay large generated logs without a table)."""

    def __init__(self, items: Iterable[dict[str, Any]]) -> None:
        super().__init__(table="memory", client=object(), threads=1)
        by_shard: dict[str, list[dict[str, Any]]] = {}
        by_customer: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            if "day_shard" in item:
                by_shard.setdefault(item["day_shard"]["S"], []).append(item)
            if "record_type" in item or item["action"]["S"] != str(Action.NONE):  # the Query's filter
                by_customer.setdefault(item["customer_id"]["S"], []).append(item)
        self._index = {
            decision_log.BY_DAY: _sorted(by_shard),
            decision_log.BY_CUSTOMER: _sorted(by_customer),
        }

    def _pages(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        values = request["ExpressionAttributeValues"]
        key = values[":shard" if request["IndexName"] == decision_log.BY_DAY else ":c"]["S"]
        times, items = self._index[request["IndexName"]].get(key, ((), ()))
        first, last = bisect_left(times, values[":start"]["S"]), bisect_right(times, values[":end"]["S"])
        self.queries += 1
        self.items += last - first
        yield from items[first:last]


def _sorted(groups: dict[str, list[dict[str, Any]]]) -> dict[str, tuple[list[str], list[dict[str, Any]]]]:
    found = {}
    for key, items in groups.items():
        items.sort(key=lambda i: i["decided_at"]["S"])
        found[key] = ([i["decided_at"]["S"] for i in items], items)
    return found
