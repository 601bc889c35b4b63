"""Day pages: which decisions were made on a day, written once per stream batch, not per decision.

Why not an index. A global secondary index writes a whole write unit for every decision it holds
(and again whenever the entry's state changes), however little it projects: with `by-customer`
that was two of the five write units an event cost. The log count function already writes once
per batch (its counting transaction, shared.adapters.stats), so it writes the batch's decisions
of each day there too, as pages: ~30 bytes a decision (compressed) instead of a write unit each. At 1 M
events/day over a full log's 40 stream shards, a 300 s count batch holds ~87 decisions of one day:
a few write units (x2 in the transaction) for the batch, ~0.1 per decision with the counts, against
1.04 for the index entry (and 0.35 more with each release). Pages are written exactly once, with the
counts (the same receipt).

What readers get: the rows (decided_at, decision_id, customer_id) of a day, in a time range, all
at once (`rows`, the simulation) or newest first from a cursor (`newest_first`, the admin API),
and they read the entries themselves by key (shared.adapters.log_entries), which is also what
makes their answers exactly what the entries hold now (a release changes an entry, never a page).
A page is listed once its stream batch was counted: seconds after the decision (the stream's
batching window), where the index was usually under a second.

Layout, in the stats table beside the counters and receipts (a partition per day, never a date,
so no stats query reads it):
- key: day `page#YYYY-MM-DD` (the decisions' decided_at day), shard `<first>#<sequence>#<part>`:
  `first` the page's earliest decided_at (fixed width, so pages sort by time), `sequence` the
  stream batch's first sequence number (zero-padded), `part` its page number within the batch;
- `rows`: zlib-compressed JSON [[microseconds after first, decision_id, customer_id], ...] sorted
  by time then id (compressed: ~30 bytes a decision instead of ~60, so half the write units; the
  ids themselves are random and barely compress);
- a page spans at most PAGE_SPAN (so a reader of [start, end] reads pages whose `first` is in
  [start - PAGE_SPAN, end]) and holds at most PAGE_ROWS rows (far under DynamoDB's 400 KB);
- `expires_at`: its last decision's expiry (the log's retention), like the entries it lists.
"""

from __future__ import annotations

import heapq
import json
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from shared.adapters import aws

PAGE_DAY_PREFIX = "page#"
PAGE_SPAN = timedelta(hours=1)
PAGE_ROWS = 500
ROWS = "rows"
FIRST = "first"
_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
_MICRO = timedelta(microseconds=1)


@dataclass(frozen=True, order=True)
class Row:
    """One decision listed on its day: ordered by time, then id (the admin API's order)."""

    decided_at: datetime
    decision_id: str
    customer_id: str

    @property
    def position(self) -> tuple[datetime, str]:
        return (self.decided_at, self.decision_id)


def stamp(moment: datetime) -> str:
    """Fixed-width UTC text: sorts as the instants do (format_utc drops zero microseconds)."""
    return moment.astimezone(UTC).strftime(_FORMAT)


def page_day(day: date) -> str:
    return f"{PAGE_DAY_PREFIX}{day.isoformat()}"


def pages_of(rows: Iterable[Row]) -> list[list[Row]]:
    """The rows of one day, sorted, cut into pages of at most PAGE_ROWS rows spanning PAGE_SPAN."""
    pages: list[list[Row]] = []
    for row in sorted(rows):
        page = pages[-1] if pages else None
        if page is None or len(page) >= PAGE_ROWS or row.decided_at - page[0].decided_at > PAGE_SPAN:
            pages.append([row])
        else:
            page.append(row)
    return pages


def page_puts(table: str, sequence: str, rows: Iterable[Row], retention: timedelta) -> list[dict[str, Any]]:
    """The Puts (for a transaction: TransactItems entries) listing `rows`, the decisions a stream
    batch starting at `sequence` inserted, on their days. Keyed by the batch, so a write that is
    repeated writes the same pages again, never another copy."""
    by_day: dict[date, list[Row]] = {}
    for row in rows:
        by_day.setdefault(row.decided_at.astimezone(UTC).date(), []).append(row)
    puts = []
    for day, listed in sorted(by_day.items()):
        for part, page in enumerate(pages_of(listed)):
            first = page[0].decided_at
            encoded = [[(row.decided_at - first) // _MICRO, row.decision_id, row.customer_id] for row in page]
            puts.append(
                {
                    "Put": {
                        "TableName": table,
                        "Item": {
                            "day": {"S": page_day(day)},
                            "shard": {"S": f"{stamp(first)}#{sequence.zfill(40)}#{part:03d}"},
                            FIRST: {"S": stamp(first)},
                            ROWS: {"B": zlib.compress(json.dumps(encoded, separators=(",", ":")).encode(), 9)},
                            "expires_at": {"N": str(int((page[-1].decided_at + retention).timestamp()))},
                        },
                    }
                }
            )
    return puts


def _first(item: dict[str, Any]) -> datetime:
    # fromisoformat reads the fixed-width stamp ~10x faster than strptime (pages are parsed in bulk).
    return datetime.fromisoformat(item[FIRST]["S"]).replace(tzinfo=UTC)


def rows_of_page(item: dict[str, Any], keep: Callable[[str], bool] | None = None) -> list[Row]:
    """The page's rows; with `keep`, only those of the customers it accepts (checked before a Row
    is built: a simulation partition keeps a small share of a busy day's rows)."""
    first = _first(item)
    return [
        Row(first + offset * _MICRO, decision_id, customer)
        for offset, decision_id, customer in json.loads(zlib.decompress(item[ROWS]["B"]))
        if keep is None or keep(customer)
    ]


def _day_bounds(day: date, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """The part of [start, end] on `day` (None: open), as instants."""
    opens = datetime.combine(day, time.min, UTC)
    closes = opens + timedelta(days=1) - _MICRO
    return max(start, opens) if start else opens, min(end, closes) if end else closes


class DayPages(aws.AwsPort):
    """Reads the day pages of the stats table."""

    def __init__(self, stats_table: str, client: Any = None) -> None:
        self.stats_table = stats_table
        self.queries = 0
        super().__init__(client)

    def _query(self, day: date, low: datetime, high: datetime, newest_first: bool) -> Iterator[dict[str, Any]]:
        """Pages of `day` whose first row is in [low, high], in `first` order."""
        request: dict[str, Any] = {
            "TableName": self.stats_table,
            "KeyConditionExpression": "#d = :d AND #s BETWEEN :low AND :high",
            "ExpressionAttributeNames": {"#d": "day", "#s": "shard"},
            "ExpressionAttributeValues": {
                ":d": {"S": page_day(day)},
                ":low": {"S": stamp(low)},
                ":high": {"S": stamp(high) + "#~"},
            },
            "ScanIndexForward": not newest_first,
        }
        while True:
            self.queries += 1
            answer = self.client.query(**request)
            yield from answer["Items"]
            if "LastEvaluatedKey" not in answer:
                return
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def rows(
        self,
        day: date,
        start: datetime | None = None,
        end: datetime | None = None,
        keep: Callable[[str], bool] | None = None,
    ) -> list[Row]:
        """Every decision of `day` in [start, end] (None: the whole day), oldest first, each once;
        with `keep`, only those of the customers it accepts."""
        low, high = _day_bounds(day, start, end)
        seen: set[str] = set()
        found = []
        for page in self._query(day, low - PAGE_SPAN, high, newest_first=False):
            for row in rows_of_page(page, keep):
                if low <= row.decided_at <= high and row.decision_id not in seen:
                    seen.add(row.decision_id)
                    found.append(row)
        found.sort()
        return found

    def newest_first(
        self,
        day: date,
        start: datetime | None = None,
        end: datetime | None = None,
        before: tuple[datetime, str] | None = None,
    ) -> Iterator[Row]:
        """The decisions of `day` in [start, end], newest first (time, then id, both descending),
        only those before the `before` position (a cursor: the last row a caller already has).
        Reads pages as the caller asks for rows: a page's rows are final once every page that
        could hold a later row was read, i.e. once the pages read reach PAGE_SPAN before it."""
        low, high = _day_bounds(day, start, end)
        if before is not None:
            high = min(high, before[0])
        waiting: list[tuple[tuple[datetime, str], Row]] = []  # a max-heap by position (negated below)
        seen: set[str] = set()

        def ready(bound: datetime | None) -> Iterator[Row]:
            while waiting and (bound is None or waiting[0][1].decided_at > bound):
                _, row = heapq.heappop(waiting)
                yield row

        for page in self._query(day, low - PAGE_SPAN, high, newest_first=True):
            for row in rows_of_page(page):
                if not low <= row.decided_at <= high or row.decision_id in seen:
                    continue
                if before is not None and row.position >= before:
                    continue
                seen.add(row.decision_id)
                heapq.heappush(waiting, (_descending(row), row))
            first = _first(page)
            # Pages still unread start at or before `first`, so none holds a row after first + span.
            yield from ready(first + PAGE_SPAN)
        yield from ready(None)


def _descending(row: Row) -> Any:
    """A heap key that pops the newest row first."""
    return _Reverse(row.position)


@dataclass(frozen=True)
class _Reverse:
    position: tuple[datetime, str]

    def __lt__(self, other: _Reverse) -> bool:
        return self.position > other.position


def rows_of(decisions: Sequence[Any]) -> list[Row]:
    """Rows of decisions (shared.domain.decision.Decision)."""
    return [Row(d.decided_at.astimezone(UTC), d.decision_id, d.customer_id) for d in decisions]
