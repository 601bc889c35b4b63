"""Admin queries over the decision log: by customer, or by time range (and reason), newest first,
paginated with an opaque token that returns each decision exactly once. Indexes only, never a scan.

A time-range query reads one day at a time, newest first, from the day's shards (the day indexes
spread a day over decision_log.DAY_SHARDS partitions) and merges them by time. The token holds, for
the current day, where each shard stopped.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.adapters import aws, decision_log
from shared.domain.decision import Action, Decision, Reason, format_utc
from shared.domain.errors import InvalidInput

MAX_RANGE = timedelta(days=31)
MAX_LIMIT = 2000  # the API allows 500 a page; exports read 2000
NOT_ADMIN = "attribute_not_exists(record_type)"


@dataclass(frozen=True)
class DecisionQuery:
    customer_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    action: Action | None = None
    reason: Reason | None = None
    limit: int = 50

    def check(self, now: datetime) -> DecisionQuery:
        """Refuses what cannot be served by an index, with what to change."""
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be 1 to {MAX_LIMIT}", [{"field": "limit", "message": "out of range"}])
        start, end = self.start, self.end
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
        text = json.dumps([self.customer_id, _t(self.start), _t(self.end), self.action, self.reason], default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _t(moment: datetime | None) -> str | None:
    return format_utc(moment) if moment else None


class DecisionLogQueries(aws.AwsPort):
    def __init__(self, table: str, client: Any = None) -> None:
        self.table = table
        super().__init__(client)

    def get(self, decision_id: str) -> Decision | None:
        item = self.client.get_item(TableName=self.table, Key=decision_log.key(decision_id)).get("Item")
        if not item or decision_log.is_admin_record(item):
            return None
        return decision_log.from_item(item)

    def page(self, query: DecisionQuery, token: str | None) -> tuple[list[Decision], str | None]:
        state = _decode(token, query.fingerprint()) if token else {}
        if query.customer_id:
            return self._customer_page(query, state)
        return self._range_page(query, state)

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
        return [json.loads(item["doc"]["S"]) for item in answer["Items"]]

    # -- by customer: one stream, in the by-customer index --------------------------------------
    def _customer_page(self, query: DecisionQuery, state: dict[str, Any]) -> tuple[list[Decision], str | None]:
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
        decisions = [decision_log.from_item(i) for i in items]
        token = _encode({"q": query.fingerprint(), "cursor": cursor}) if cursor else None
        return decisions, token

    # -- by time range: a day at a time, its shards merged ----------------------------------------
    def _range_page(self, query: DecisionQuery, state: dict[str, Any]) -> tuple[list[Decision], str | None]:
        assert query.start and query.end
        day = state.get("day") or f"{query.end:%Y-%m-%d}"
        cursors: dict[str, Any] = state.get("cursors") or {}
        found: list[Decision] = []
        while day >= f"{query.start:%Y-%m-%d}":
            wanted = query.limit - len(found)
            taken, cursors, exhausted = self._day_page(query, day, cursors, wanted)
            found += taken
            if not exhausted:
                return found, _encode({"q": query.fingerprint(), "day": day, "cursors": cursors})
            day = (datetime.fromisoformat(day) - timedelta(days=1)).strftime("%Y-%m-%d")
            cursors = {}
            if len(found) >= query.limit:
                more = day >= f"{query.start:%Y-%m-%d}"
                return found, _encode({"q": query.fingerprint(), "day": day, "cursors": {}}) if more else None
        return found, None

    def _day_page(
        self, query: DecisionQuery, day: str, cursors: dict[str, Any], wanted: int
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
        if query.reason:
            index, condition = decision_log.BY_DAY_REASON, "day_shard = :shard AND reason_at BETWEEN :lo AND :hi"
            values[":lo"] = {"S": f"{query.reason}#{_t(query.start)}"}
            values[":hi"] = {"S": f"{query.reason}#{_t(query.end)}"}
            del values[":start"], values[":end"]
        else:
            index, condition = decision_log.BY_DAY, "day_shard = :shard AND decided_at BETWEEN :start AND :end"
        request = {
            "TableName": self.table,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }
        return self._filtered(request, query, reason_in_key=bool(query.reason))

    @staticmethod
    def _filtered(request: dict[str, Any], query: DecisionQuery, reason_in_key: bool = False) -> dict[str, Any]:
        filters, values, names = [NOT_ADMIN], request["ExpressionAttributeValues"], {}
        if query.action:
            filters.append("#action = :action")
            names["#action"] = "action"
            values[":action"] = {"S": str(query.action)}
        if query.reason and not reason_in_key:
            filters.append("#reason = :reason")
            names["#reason"] = "reason"
            values[":reason"] = {"S": str(query.reason)}
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


def _encode(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, sort_keys=True, separators=(",", ":")).encode()).decode()


def _decode(token: str, fingerprint: str) -> dict[str, Any]:
    refused = InvalidInput(
        "next_token is not a token this query gave out; repeat the query without it",
        [{"field": "next_token", "message": "is invalid"}],
    )
    try:
        state = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        raise refused from None
    if not isinstance(state, dict) or state.get("q") != fingerprint:
        raise refused
    return state
