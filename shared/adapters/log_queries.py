"""Admin queries over the decision log: by customer, or by time range (and reason), newest first,
paginated with a signed token (shared.adapters.tokens) that returns each decision exactly once.
Keys, an index and the day pages only, never a scan.

A time-range query reads one day at a time, newest first: the day's pages (shared.adapters.day_pages,
written by the log stream function) list its decisions in order, and the entries are read by key
(shared.adapters.log_entries), so each shows as it is now. Action, reason, state and "a decision,
not an admin or outcome record" are checked on the entry, as the day index's FilterExpression did.
The token holds the day and the position (decided_at, decision_id) of the last row it read; it is
signed with the query's fingerprint, so a caller can neither edit it nor use it for another query.
A decision is listed once its stream batch is counted (seconds after it was committed).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from typing import Any

from shared.adapters import aws, day_pages, decision_log, log_entries
from shared.adapters.day_pages import DayPages
from shared.adapters.tokens import SecretKey, TokenSigner, refused
from shared.domain.decision import Action, Decision, Reason, State, format_utc
from shared.domain.errors import InvalidInput

MAX_RANGE = timedelta(days=31)
# The log holds nothing older than the service, nor decided later than tomorrow (UTC): a bound far
# outside would only make the API walk empty days (a Query each) or overflow datetime arithmetic.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
TOKEN_KIND = "decisions"  # noqa: S105 - what the token pages, not a secret
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_LIMIT = 2000  # the API allows 500 a page; exports read 2000
# The entries one range request may read by key (50 BatchGetItems, at most 2,500 read units): a
# filter that matches little on a busy day (1 M decisions) would otherwise read the whole day
# before it has a page, past API Gateway's 29 s. A request that reaches it ends with what it
# found (maybe nothing) and a token that resumes after the last entry read; clients page on.
MAX_EXAMINED = 5000
NOT_ADMIN = "attribute_not_exists(record_type)"
NOT_A_DECISION = "record_type"  # admin actions and outcome records carry one; decisions do not
# A key of the by-customer index (a by-customer token's cursor): the table's key and the index's.
_CUSTOMER_KEY = (decision_log.KEY, "customer_id", "decided_at")
Position = tuple[datetime, str]  # (decided_at, decision_id): the order a range is listed in, descending


@dataclass(frozen=True)
class DecisionQuery:
    customer_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    action: Action | None = None
    reason: Reason | None = None
    limit: int = 50
    state: State | None = None

    def check(self, now: datetime) -> DecisionQuery:
        """Refuses what cannot be served by an index, with what to change."""
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be 1 to {MAX_LIMIT}", [{"field": "limit", "message": "out of range"}])
        start = check_moment(self.start, "from", now) if self.start else None
        end = check_moment(self.end, "to", now) if self.end else None
        if start and end and start > end:
            raise InvalidInput("from is after to; swap them", [{"field": "from", "message": "is after to"}])
        if self.customer_id:
            return self
        if not (start and end):
            raise InvalidInput(
                "give customer_id, or a time range (from and to) of at most 31 days",
                [{"field": "customer_id", "message": "or from/to is required"}],
            )
        if end - start > MAX_RANGE:
            raise InvalidInput(
                f"the range is {(end - start).days} days; at most 31 without a customer_id, so narrow from/to",
                [{"field": "from", "message": "range longer than 31 days"}],
            )
        return self

    def fingerprint(self) -> str:
        # Everything that selects or orders decisions; limit is left out, so a caller may change
        # the page size between pages.
        selects: list[Any] = [self.customer_id, _t(self.start), _t(self.end), self.action, self.reason]
        if self.state is not None:  # appended only when set: tokens of earlier queries stay valid
            selects.append(self.state)
        text = json.dumps(selects, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def _t(moment: datetime | None) -> str | None:
    return format_utc(moment) if moment else None


def check_moment(moment: datetime, field: str, now: datetime) -> datetime:
    """`moment` in UTC if it lies between 2000-01-01 and the end of tomorrow (UTC), else a 400 naming `field`."""
    latest = datetime.combine((now + timedelta(days=1)).astimezone(UTC).date(), time.max, tzinfo=UTC)
    try:
        in_utc = moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+05:00 is before the first representable instant
        in_utc = None
    if in_utc is None or not EARLIEST <= in_utc <= latest:
        raise InvalidInput(
            f"{field} must lie between {EARLIEST:%Y-%m-%d} and {latest:%Y-%m-%d} (UTC)",
            [{"field": field, "message": "is out of range"}],
        )
    return in_utc


class DecisionLogQueries(aws.AwsPort):
    def __init__(self, table: str, stats_table: str, client: Any = None, signer: TokenSigner | None = None) -> None:
        self.table = table
        # The day pages live in the stats table (shared.adapters.day_pages).
        self.pages = DayPages(stats_table, client)
        # Without a signer (tools that never page) the key is looked up only if a token is needed.
        self.signer = signer or TokenSigner(SecretKey(None))
        super().__init__(client)

    def get(self, decision_id: str) -> Decision | None:
        item = self.client.get_item(TableName=self.table, Key=decision_log.key(decision_id)).get("Item")
        if not item or NOT_A_DECISION in item:  # an admin action or an outcome record
            return None
        return decision_log.from_item(item)

    def page(
        self, query: DecisionQuery, token: str | None, max_bytes: int | None = None
    ) -> tuple[list[Decision], str | None]:
        """Up to query.limit decisions, newest first, and the token of the next page. With
        `max_bytes`, the page also ends before its decisions' JSON (escaped, as it travels inside a
        Lambda response) passes that size: at least one decision is always served."""
        state = self.signer.decode(TOKEN_KIND, query.fingerprint(), token) if token is not None else {}
        budget = _Budget(max_bytes, MAX_EXAMINED)
        if query.customer_id:
            return self._customer_page(query, _customer_state(state), budget)
        return self._range_page(query, _range_state(state, query), budget)

    def timeline(self, customer_id: str, limit: int) -> list[dict[str, Any]]:
        """A customer's newest entries: decisions and admin actions, as stored."""
        answer = self.client.query(
            TableName=self.table,
            IndexName=decision_log.BY_CUSTOMER,
            KeyConditionExpression="customer_id = :c",
            ExpressionAttributeValues={":c": {"S": customer_id}},
            ScanIndexForward=False,
            Limit=limit,
        )
        # A decision with its lifecycle now (a release or a cancellation updates the item's own
        # attributes, not `doc`), as GET /decisions gives it; admin and outcome records as stored.
        return [
            json.loads(
                decision_log.stored_text(item)
                if NOT_A_DECISION in item
                else decision_log.from_item(item).model_dump_json()
            )
            for item in answer["Items"]
        ]

    # -- by customer: one stream, in the by-customer index --------------------------------------
    def _customer_page(
        self, query: DecisionQuery, state: dict[str, Any], budget: _Budget
    ) -> tuple[list[Decision], str | None]:
        condition = "customer_id = :c"
        values: dict[str, Any] = {":c": {"S": query.customer_id}}
        if query.start or query.end:
            condition += " AND decided_at BETWEEN :start AND :end"
            values[":start"] = {"S": _t(query.start) or "0000"}
            values[":end"] = {"S": _t(query.end) or "9999"}
        request = {
            "TableName": self.table,
            "IndexName": decision_log.BY_CUSTOMER,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }
        items, cursor = self._read(self._filtered(request, query), state.get("cursor"), query.limit)
        kept = budget.take(items)
        if len(kept) < len(items):
            items, cursor = kept, self._key_of(kept[-1])
        decisions = [decision_log.from_item(i) for i in items]
        token = self._token(query, {"cursor": cursor}) if cursor else None
        return decisions, token

    # -- by time range: a day at a time, from the day's pages ------------------------------------
    def _range_page(
        self, query: DecisionQuery, state: _RangeState, budget: _Budget
    ) -> tuple[list[Decision], str | None]:
        assert query.start and query.end
        first_day = query.start.date()
        day, before = state.day or query.end.date(), state.before
        found: list[Decision] = []
        while day >= first_day:
            taken, last, exhausted = self._day_page(query, day, before, query.limit - len(found), budget)
            found += taken
            if not exhausted:
                return found, self._token(query, _range_token(day, last or before))
            day, before = day - timedelta(days=1), None
            if len(found) >= query.limit or budget.spent or budget.examined_all:
                return found, self._token(query, _range_token(day, None)) if day >= first_day else None
        return found, None

    def _token(self, query: DecisionQuery, state: dict[str, Any]) -> str:
        return self.signer.encode(TOKEN_KIND, query.fingerprint(), state)

    def _day_page(
        self, query: DecisionQuery, day: date, before: Position | None, wanted: int, budget: _Budget
    ) -> tuple[list[Decision], Position | None, bool]:
        """Up to `wanted` newest decisions of one day after the `before` position, the position of
        the last one, and whether the day has no more. The day's pages list the decisions; each
        entry is read by key (as it is now: its state may have changed since), and what the index's
        FilterExpression did is done here, on the entry, in the same order."""
        rows = self.pages.newest_first(day, query.start, query.end, before=before)
        filtered = _filters(query)
        taken: list[dict[str, Any]] = []
        last: Position | None = None
        chunk = 0
        while len(taken) < wanted:
            # Entries are read a BatchGetItem (at most 100 keys) at a time, as many as the page still
            # needs; with a filter, twice as many as the last time, since so many did not match. Each
            # entry read costs a read unit's half whether it matches or not (as a filtered Query did).
            needed = wanted - len(taken)
            chunk = min(log_entries.BATCH_KEYS, max(needed, 2 * chunk) if filtered else needed)
            chunk = min(chunk, budget.examinable)
            if chunk == 0:  # this request read all it may: the next one resumes after `last`
                return _decisions(taken), last, False
            listed = list(islice(rows, chunk))
            budget.examined(len(listed))
            entries = log_entries.fetch(self.client, self.table, [r.decision_id for r in listed]) if listed else {}
            for row in listed:
                item = entries.get(row.decision_id)  # absent: expired since the page was written
                if item is None or not _matches(item, query):
                    last = row.position
                    continue
                if len(taken) == wanted or not budget.take([item]):
                    return _decisions(taken), last, False
                taken.append(item)
                last = row.position
            if len(listed) < chunk:
                return _decisions(taken), last, True
        # The page is full at a chunk's end: the day is done if no row is left (a row left that the
        # filter would refuse still gets a token, as a filtered Query's LastEvaluatedKey did).
        return _decisions(taken), last, next(rows, None) is None

    @staticmethod
    def _filtered(request: dict[str, Any], query: DecisionQuery) -> dict[str, Any]:
        filters, values, names = [NOT_ADMIN], request["ExpressionAttributeValues"], {}
        if query.action:
            filters.append("#action = :action")
            names["#action"] = "action"
            values[":action"] = {"S": str(query.action)}
        if query.reason:
            filters.append("#reason = :reason")
            names["#reason"] = "reason"
            values[":reason"] = {"S": str(query.reason)}
        if query.state:
            filters.append(_state_filter(query.state, values, names))
        request = {**request, "FilterExpression": " AND ".join(filters)}
        if names:
            request["ExpressionAttributeNames"] = names
        return request

    def _read(self, request: dict[str, Any], cursor: Any, wanted: int) -> tuple[list[dict[str, Any]], Any]:
        """Up to `wanted` matching items after `cursor`, and the key to resume after the last one
        (None when the stream has no more)."""
        items: list[dict[str, Any]] = []
        start = cursor
        while len(items) < wanted:
            page = self.client.query(**request, Limit=wanted, **({"ExclusiveStartKey": start} if start else {}))
            items += page["Items"]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        if len(items) > wanted:
            items = items[:wanted]
            return items, self._key_of(items[-1])
        return items, (self._key_of(items[-1]) if start and items else start)

    @staticmethod
    def _key_of(item: dict[str, Any]) -> dict[str, Any]:
        return {n: item[n] for n in _CUSTOMER_KEY if n in item}


def _state_filter(state: State, values: dict[str, Any], names: dict[str, str]) -> str:
    """Matches the lifecycle attribute; entries logged before it existed have none, and are what
    Decision derives for them: suppressed (action none) or released (an approval)."""
    names["#state"] = decision_log.STATE
    values[":state"] = {"S": str(state)}
    if state not in (State.SUPPRESSED, State.RELEASED):
        return "#state = :state"
    names["#action"] = "action"
    values[":none"] = {"S": str(Action.NONE)}
    legacy = "#action = :none" if state == State.SUPPRESSED else "#action <> :none"
    return f"(#state = :state OR (attribute_not_exists(#state) AND {legacy}))"


class _Budget:
    """The bytes a page may still fill (None: no limit), counted as each decision's stored JSON
    escaped into a JSON string, the way it travels in the Lambda response; and the entries a range
    request may still read by key (MAX_EXAMINED)."""

    def __init__(self, max_bytes: int | None, max_examined: int | None = None) -> None:
        self.left = max_bytes
        self.served = 0
        self.examinable = max_examined if max_examined is not None else 1 << 62  # entries it may still read

    @property
    def spent(self) -> bool:
        return self.left is not None and self.left <= 0

    @property
    def examined_all(self) -> bool:
        return self.examinable <= 0

    def examined(self, entries: int) -> None:
        self.examinable -= entries

    def take(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The longest prefix of `items` that fits (at least one item if the page is empty)."""
        kept = 0
        for item in items:
            if self.left is not None:
                size = len(json.dumps(decision_log.stored_text(item)))
                if size > self.left and self.served:
                    self.left = 0  # full: the next page starts with this item
                    break
                self.left -= size
            kept += 1
            self.served += 1
        return items[:kept]


def _customer_state(state: dict[str, Any]) -> dict[str, Any]:
    """A by-customer token's state: one key of the by-customer index, or nothing."""
    if state and (set(state) != {"cursor"} or not _is_key(state["cursor"])):
        raise refused()
    return state


@dataclass(frozen=True)
class _RangeState:
    """Where a time-range listing resumes: a day (None: the range's last) and, on it, the position
    of the last row read (None: from the day's newest)."""

    day: date | None = None
    before: Position | None = None


def _range_token(day: date, before: Position | None) -> dict[str, Any]:
    state: dict[str, Any] = {"day": day.isoformat()}
    if before is not None:
        state["before"] = [day_pages.stamp(before[0]), before[1]]
    return state


def earlier_version() -> InvalidInput:
    """A genuine token of the listing by day index (its per-shard cursors mean nothing to the day
    pages): refused, but saying what to do, since the caller did nothing wrong."""
    return InvalidInput(
        "next_token was given out by an earlier version of this listing; repeat the query without it to start again",
        [{"field": "next_token", "message": "is from an earlier version: start the listing again"}],
    )


def _range_state(state: dict[str, Any], query: DecisionQuery) -> _RangeState:
    """A time-range token's state: a day inside the query's range and, optionally, the position
    (decided_at on that day, decision_id) to resume after. Signed, so this only guards against our
    own mistakes and tokens of an earlier version."""
    if not state:
        return _RangeState()
    assert query.start and query.end
    if set(state) == {"day", "cursors"}:
        raise earlier_version()
    day_text, before = state.get("day"), state.get("before")
    if not {"day"} <= set(state) <= {"day", "before"} or not isinstance(day_text, str) or not _DAY.fullmatch(day_text):
        raise refused()
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        raise refused() from None
    if not query.start.date() <= day <= query.end.date():
        raise refused()
    if before is None:
        return _RangeState(day)
    if not (isinstance(before, list) and len(before) == 2 and all(isinstance(v, str) for v in before)):
        raise refused()
    try:
        moment = datetime.strptime(before[0], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)
    except ValueError:
        raise refused() from None
    if moment.date() != day:
        raise refused()
    return _RangeState(day, (moment, before[1]))


def _filters(query: DecisionQuery) -> bool:
    return bool(query.action or query.reason or query.state)


def _matches(item: dict[str, Any], query: DecisionQuery) -> bool:
    """What the day index's FilterExpression kept: decisions only (NOT_ADMIN), of the action,
    reason and state asked for (`_state_filter`'s rule for entries without a state)."""
    if NOT_A_DECISION in item:
        return False
    if query.action and item["action"]["S"] != str(query.action):
        return False
    if query.reason and item["reason"]["S"] != str(query.reason):
        return False
    if query.state:
        stored = item.get(decision_log.STATE)
        if stored is not None:
            return bool(stored["S"] == str(query.state))
        if query.state == State.SUPPRESSED:
            return bool(item["action"]["S"] == str(Action.NONE))
        if query.state == State.RELEASED:
            return bool(item["action"]["S"] != str(Action.NONE))
        return False
    return True


def _decisions(items: Iterable[dict[str, Any]]) -> list[Decision]:
    return [decision_log.from_item(item) for item in items]


def _is_key(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and decision_log.KEY in value
        and set(value) <= set(_CUSTOMER_KEY)
        and all(isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in value.values())
    )
