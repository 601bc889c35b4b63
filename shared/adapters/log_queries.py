"""Admin queries over the decision log: by customer, or by time range (and reason), newest first,
paginated with a signed token (shared.adapters.tokens) that returns each decision exactly once.
Indexes only, never a scan.

A time-range query reads one day at a time, newest first, from the day's shards (the day index
spreads a day over decision_log.DAY_SHARDS partitions; action, reason and state are filters on it)
and merges them by time. The token holds, for the current day, where each shard stopped; it is
signed with the query's fingerprint, so a caller can neither edit it nor use it for another query.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from shared.adapters import aws, decision_log
from shared.adapters.tokens import SecretKey, TokenSigner, refused
from shared.domain.decision import Action, Decision, Reason, State, format_utc
from shared.domain.errors import InvalidInput

MAX_RANGE = timedelta(days=31)
# The log holds nothing older than the service, nor decided later than tomorrow (UTC): a bound far
# outside would only make the API walk empty days (16 Queries each) or overflow datetime arithmetic.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
TOKEN_KIND = "decisions"  # noqa: S105 - what the token pages, not a secret
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_LIMIT = 2000  # the API allows 500 a page; exports read 2000
NOT_ADMIN = "attribute_not_exists(record_type)"
NOT_A_DECISION = "record_type"  # admin actions and outcome records carry one; decisions do not


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
    def __init__(self, table: str, client: Any = None, signer: TokenSigner | None = None) -> None:
        self.table = table
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
        budget = _Budget(max_bytes)
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

    # -- by time range: a day at a time, its shards merged ----------------------------------------
    def _range_page(
        self, query: DecisionQuery, state: dict[str, Any], budget: _Budget
    ) -> tuple[list[Decision], str | None]:
        assert query.start and query.end
        day = state.get("day") or f"{query.end:%Y-%m-%d}"
        cursors: dict[str, Any] = state.get("cursors") or {}
        found: list[Decision] = []
        while day >= f"{query.start:%Y-%m-%d}":
            wanted = query.limit - len(found)
            taken, cursors, exhausted = self._day_page(query, day, cursors, wanted, budget)
            found += taken
            if not exhausted:
                return found, self._token(query, {"day": day, "cursors": cursors})
            day = (datetime.fromisoformat(day) - timedelta(days=1)).strftime("%Y-%m-%d")
            cursors = {}
            if len(found) >= query.limit or budget.spent:
                more = day >= f"{query.start:%Y-%m-%d}"
                return found, self._token(query, {"day": day, "cursors": {}}) if more else None
        return found, None

    def _token(self, query: DecisionQuery, state: dict[str, Any]) -> str:
        return self.signer.encode(TOKEN_KIND, query.fingerprint(), state)

    def _day_page(
        self, query: DecisionQuery, day: str, cursors: dict[str, Any], wanted: int, budget: _Budget
    ) -> tuple[list[Decision], dict[str, Any], bool]:
        """Up to `wanted` newest decisions of one day across its shards, after the shard cursors."""
        heads: list[tuple[str, str, int, dict[str, Any]]] = []
        streams: dict[str, tuple[list[dict[str, Any]], bool]] = {}
        for shard in range(decision_log.DAY_SHARDS):
            name = f"{day}#{shard:02d}"
            if cursors.get(name) == "done":
                continue
            request = self._day_request(query, name)
            items, last = self._read(request, cursors.get(name), wanted)
            streams[name] = (items, last is None)
        for name, (items, _) in streams.items():
            for position, item in enumerate(items):
                heads.append(
                    (item["decided_at"]["S"], item[decision_log.KEY]["S"], position, {"name": name, "item": item})
                )
        newest = heapq.nlargest(wanted, heads, key=lambda h: (h[0], h[1]))
        # A prefix of the merged order holds a prefix of every shard: the cursors below stay exact.
        newest = newest[: len(budget.take([ref["item"] for *_, ref in newest]))]
        taken: dict[str, int] = {}
        for _, _, position, ref in newest:
            taken[ref["name"]] = max(taken.get(ref["name"], -1), position)
        new_cursors = dict(cursors)
        for name, (items, reached_end) in streams.items():
            last_taken = taken.get(name, -1)
            if reached_end and last_taken == len(items) - 1:
                new_cursors[name] = "done"
            elif last_taken >= 0:
                new_cursors[name] = self._key_of(items[last_taken])
        exhausted = all(new_cursors.get(f"{day}#{s:02d}") == "done" for s in range(decision_log.DAY_SHARDS))
        return [decision_log.from_item(ref["item"]) for *_, ref in newest], new_cursors, exhausted

    def _day_request(self, query: DecisionQuery, shard: str) -> dict[str, Any]:
        values: dict[str, Any] = {
            ":shard": {"S": shard},
            ":start": {"S": _t(query.start)},
            ":end": {"S": _t(query.end)},
        }
        # A reason is a filter on the day index (there is no reason index: see decision_log): the
        # same order, newest first, and the same answers as a reason-keyed index gave.
        index, condition = decision_log.BY_DAY, "day_shard = :shard AND decided_at BETWEEN :start AND :end"
        request = {
            "TableName": self.table,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }
        return self._filtered(request, query)

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
        names = (decision_log.KEY, "customer_id", "decided_at", "day_shard", "reason_at")
        return {n: item[n] for n in names if n in item}


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
    escaped into a JSON string, the way it travels in the Lambda response."""

    def __init__(self, max_bytes: int | None) -> None:
        self.left = max_bytes
        self.served = 0

    @property
    def spent(self) -> bool:
        return self.left is not None and self.left <= 0

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


def _range_state(state: dict[str, Any], query: DecisionQuery) -> dict[str, Any]:
    """A time-range token's state: a day inside the query's range and, per shard of that day,
    "done" or a key to resume after. Signed, so this only guards against our own mistakes."""
    if not state:
        return state
    assert query.start and query.end
    day, cursors = state.get("day"), state.get("cursors")
    if set(state) != {"day", "cursors"} or not isinstance(day, str) or not _DAY.fullmatch(day):
        raise refused()
    if not f"{query.start:%Y-%m-%d}" <= day <= f"{query.end:%Y-%m-%d}" or not isinstance(cursors, dict):
        raise refused()
    shards = {f"{day}#{shard:02d}" for shard in range(decision_log.DAY_SHARDS)}
    if not set(cursors) <= shards or not all(c == "done" or _is_key(c) for c in cursors.values()):
        raise refused()
    return state


def _is_key(value: Any) -> bool:
    names = {decision_log.KEY, "customer_id", "decided_at", "day_shard", "reason_at"}
    return (
        isinstance(value, dict)
        and decision_log.KEY in value
        and set(value) <= names
        and all(isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) for v in value.values())
    )
