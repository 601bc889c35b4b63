"""Reading the decision log back for a simulation: a partition's decisions of a window, and the
history of its customers before it. Day pages and keys, never a scan.

- Decisions of the window (`decisions`): for each day of the window, the day's pages
  (shared.adapters.day_pages, written by the log stream function with its counts) list every
  decision of the day as (decided_at, decision_id, customer_id). The rows of the window are
  read once per day whatever partitions are read together; the rows of customers outside the
  partitions read are dropped by the customer id (`partition_of`) before anything else is
  fetched; the remaining entries are read by key (shared.adapters.log_entries.fetch,
  BatchGetItem, 100 keys a request) and decoded. A partition of a plan split in sub-partitions
  reads the same pages as its shard's other sub-partitions and fetches only its own customers,
  so its memory and its entry reads divide by the sub-partitions while its page reads repeat.
  Entries are read as they are now (a release or a cancellation updates the entry, never a page).
- History (`histories`): one Query per customer on index `by-customer` over [warm-up start,
  window end): the approvals before the window (to warm the ledger), the outcome records and the
  admin records (opt-outs set and lifted); the same Query brings the customer's earlier
  approvals at no extra request.

A decision is on its day's pages once its stream batch was counted (the stream's batching
window, seconds): a window ending now may miss the last seconds' decisions.

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

from shared.adapters import aws, day_pages, decision_log, log_entries, outcome_log
from shared.domain.decision import Action, DecisionInput, State, format_utc
from shared.domain.events import Channel, Outcome
from shared.domain.outcomes import FollowUpOutcome
from shared.domain.replay import LoggedDecision, PreferenceChange

THREADS = 16
# Days whose pages are read at once: a day's rows are held whole while they are filtered (~350 bytes
# a row as objects: ~350 MB for a day of 1 million decisions), and parsing them is CPU work the
# threads do not share; two overlap one day's Query latency with another's parsing.
DAY_THREADS = 2
# A plan's partitions with one sub-partition: customers by hash. The hash (sha256 of the id) and
# its split (low part: the shard, higher part: the sub-partition) are fixed: a job's stored plan
# and its recorded partitions mean the same customers whatever code runs them.
SHARDS = 16
_T = TypeVar("_T")
_R = TypeVar("_R")
PREFERENCES_CHANGED = "preferences_changed"
_STATES = {s.value: s for s in State}
_ACTIONS = {a.value: a for a in Action}
_CHANNELS = {c.value: c for c in Channel}
_OUTCOMES = {o.value: o for o in Outcome}


def partition_of(customer_id: str, sub_partitions: int = 1) -> int:
    """The customer's partition when each of the SHARDS is split in `sub_partitions`: its shard
    (the hash's low part) + SHARDS x its sub-partition (the hash's higher part, independent of
    the shard). With 1 sub-partition it is the customer's shard."""
    # Hashed for every row of every page a partition reads (from the digest's bytes: the same number
    # as its hex form, for less work).
    digest = int.from_bytes(hashlib.sha256(customer_id.encode()).digest(), "big")
    return digest % SHARDS + SHARDS * ((digest // SHARDS) % sub_partitions)


@dataclass(frozen=True)
class DayRead:
    """One day of a window: the window's part of that day, and the partitions whose customers are
    kept (None: every customer the day lists)."""

    day: date
    start: datetime
    end: datetime
    keep: frozenset[int] | None = None  # partitions (partition_of) to keep; None keeps every row
    sub_partitions: int = 1


def day_reads(start: datetime, end: datetime, partitions: Iterable[int], sub_partitions: int = 1) -> list[DayRead]:
    """The days to read for exactly the decisions of these partitions' customers in [start, end]
    (partition p: shard p % SHARDS, sub-partition p // SHARDS of `sub_partitions`)."""
    wanted = frozenset(partitions)
    keep = None if wanted == frozenset(range(SHARDS * sub_partitions)) else wanted
    reads = []
    day = start.astimezone(UTC).date()
    while day <= end.astimezone(UTC).date():
        opens = datetime.combine(day, datetime.min.time(), UTC)
        first, last = max(start, opens), min(end, opens + timedelta(days=1) - timedelta(microseconds=1))
        reads.append(DayRead(day, first, last, keep, sub_partitions))
        day += timedelta(days=1)
    # Every partition of a job reads every page of the window's days: each starts on another day,
    # so the partitions running at once do not all read one day's page key (one DynamoDB partition)
    # at the same time. The order does not matter to the answer (the replay sorts by time).
    offset = min(wanted) % len(reads) if reads and keep is not None else 0
    return reads[offset:] + reads[:offset]


@dataclass(frozen=True)
class History:
    approvals: list[LoggedDecision]
    outcomes: list[FollowUpOutcome]
    changes: list[PreferenceChange]


class LogReader(aws.AwsPort):
    """The simulation's reads of the decision log (entries, by-customer) and of its day pages (the
    stats table). Counts its requests and the items they return (for progress and the bench);
    reads run on THREADS threads, since each waits on the network."""

    def __init__(self, table: str, stats_table: str, client: Any = None, threads: int = THREADS) -> None:
        self.table = table
        self.threads = threads
        self.pages = day_pages.DayPages(stats_table, client)
        self.history_queries = 0
        self.batch_gets = 0
        self.items = 0  # log entries and history items returned
        super().__init__(client)

    @property
    def queries(self) -> int:
        """Query requests: day pages and histories."""
        return self.pages.queries + self.history_queries

    def decisions(self, reads: Sequence[DayRead]) -> Iterator[LoggedDecision]:
        """The decisions of these days' windows and partitions, decoded (in no particular order)."""

        def listed(one: DayRead) -> list[str]:
            return [row.decision_id for row in self._rows(one)]

        ids = list(self._parallel(listed, reads, min(self.threads, DAY_THREADS)))
        chunks = [ids[n : n + log_entries.BATCH_KEYS] for n in range(0, len(ids), log_entries.BATCH_KEYS)]

        def read(chunk: list[str]) -> list[LoggedDecision]:
            # A listed decision whose entry has expired is simply absent.
            return [decode(item) for item in self._entries(chunk) if "record_type" not in item]

        yield from self._parallel(read, chunks)

    def _rows(self, one: DayRead) -> list[day_pages.Row]:
        if one.keep is None:
            return self.pages.rows(one.day, one.start, one.end)
        keep, subs = one.keep, one.sub_partitions
        # Other partitions' rows are dropped as the page is parsed, before a Row is built. No memo
        # of customers' partitions: a month of a large log has millions of customers.
        return self.pages.rows(one.day, one.start, one.end, lambda customer: partition_of(customer, subs) in keep)

    def _entries(self, decision_ids: list[str]) -> list[dict[str, Any]]:
        found = log_entries.fetch(self.client, self.table, decision_ids)
        self.batch_gets += -(-len(decision_ids) // log_entries.BATCH_KEYS)
        self.items += len(found)
        return list(found.values())

    def histories(
        self, customers: Sequence[str], start: datetime, window_start: datetime, end: datetime
    ) -> Iterator[tuple[str, History]]:
        """For each customer (in the order given), its approvals in [start, window_start) and its
        outcome records and opt-out changes in [start, end]. One Query (a page, usually) each:
        the window's approvals come back too, and are skipped undecoded (the day pages listed them)."""
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
            self.history_queries += 1
            page = self.client.query(**request)
            self.items += len(page["Items"])
            yield from page["Items"]
            if "LastEvaluatedKey" not in page:
                return
            request = {**request, "ExclusiveStartKey": page["LastEvaluatedKey"]}

    def _parallel(self, read: Callable[[_T], list[_R]], work: Sequence[_T], threads: int | None = None) -> Iterator[_R]:
        threads = threads or self.threads
        if len(work) <= 1 or threads <= 1:
            for one in work:
                yield from read(one)
            return
        with ThreadPoolExecutor(max_workers=threads) as pool:
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
    """The same reads over log items held in memory (the bench and tests replay large generated
    logs without a table): the day pages the log stream function would have written for them
    (`stream_pages`), read and parsed as DayPages reads them, the entries by id, and the
    by-customer index's answers."""

    def __init__(self, items: Iterable[dict[str, Any]], batch: timedelta | None = None) -> None:
        items = list(items)
        super().__init__(table="memory", stats_table="memory", client=object(), threads=1)
        self.pages = _PagesInMemory(stream_pages(items, "memory", batch or STREAM_BATCH))
        self._entries_by_id = {item[decision_log.KEY]["S"]: item for item in items}
        by_customer: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            if "record_type" in item or item["action"]["S"] != str(Action.NONE):  # the Query's filter
                by_customer.setdefault(item["customer_id"]["S"], []).append(item)
        self._by_customer = _sorted(by_customer)

    def _entries(self, decision_ids: list[str]) -> list[dict[str, Any]]:
        found = [self._entries_by_id[i] for i in decision_ids if i in self._entries_by_id]
        self.batch_gets += -(-len(decision_ids) // log_entries.BATCH_KEYS)
        self.items += len(found)
        return found

    def _pages(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        values = request["ExpressionAttributeValues"]
        times, items = self._by_customer.get(values[":c"]["S"], ((), ()))
        first, last = bisect_left(times, values[":start"]["S"]), bisect_right(times, values[":end"]["S"])
        self.history_queries += 1
        self.items += last - first
        yield from items[first:last]


# What one count batch of one stream shard spans at 1 M events a day on ONE shard: LogCountFunction's
# 300 s window over the full log's ~40 shards (bench/shards.py) hands each batch ~87 decisions, as
# many as 7.5 s of the whole stream.
STREAM_BATCH = timedelta(seconds=300 / 40)
STREAM_BATCH_SIZE = 500  # ... and BatchSize
PAGE_RETENTION = timedelta(days=400)  # template DecisionRetentionDays (only the pages' expires_at)


def stream_pages(
    items: Iterable[dict[str, Any]], stats_table: str, batch: timedelta = STREAM_BATCH
) -> list[dict[str, Any]]:
    """The day page items the log stream function writes for these log entries (decisions only),
    batched as its event source batches them: the decisions of each `batch` of time (the stream's
    window; the bench stretches it to lay a small log out as a busy one's pages), at most
    STREAM_BATCH_SIZE a batch (bench and tests: a log written without the stream)."""
    rows = sorted(
        day_pages.Row(_time(item["decided_at"]["S"]), item[decision_log.KEY]["S"], item["customer_id"]["S"])
        for item in items
        if "record_type" not in item
    )
    batches: list[list[day_pages.Row]] = []
    for row in rows:
        last = batches[-1] if batches else None
        if last is None or len(last) >= STREAM_BATCH_SIZE or row.decided_at - last[0].decided_at >= batch:
            batches.append([row])
        else:
            last.append(row)
    return [
        put["Put"]["Item"]
        for number, rows_of_batch in enumerate(batches)
        for put in day_pages.page_puts(stats_table, str(number), rows_of_batch, PAGE_RETENTION)
    ]


class _PagesInMemory(day_pages.DayPages):
    """DayPages over page items held in memory: its Query answered from them (sorted by key, as the
    table's sort key orders them), so `rows` parses and filters them exactly as it does a table's."""

    def __init__(self, pages: list[dict[str, Any]]) -> None:
        super().__init__("memory", client=object())
        by_day: dict[str, list[dict[str, Any]]] = {}
        for page in pages:
            by_day.setdefault(page["day"]["S"], []).append(page)
        self._by_day = {day: _keyed(found) for day, found in by_day.items()}

    def _query(self, day: date, low: datetime, high: datetime, newest_first: bool) -> Iterator[dict[str, Any]]:
        keys, pages = self._by_day.get(day_pages.page_day(day), ([], []))
        first, last = bisect_left(keys, day_pages.stamp(low)), bisect_right(keys, day_pages.stamp(high) + "#~")
        self.queries += 1
        found = pages[first:last]
        yield from reversed(found) if newest_first else found


def _keyed(pages: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    pages.sort(key=lambda p: p["shard"]["S"])
    return [p["shard"]["S"] for p in pages], pages


def _sorted(groups: dict[str, list[dict[str, Any]]]) -> dict[str, tuple[list[str], list[dict[str, Any]]]]:
    found = {}
    for key, items in groups.items():
        items.sort(key=lambda i: i["decided_at"]["S"])
        found[key] = ([i["decided_at"]["S"] for i in items], items)
    return found
