"""List-price cost per million events from measured AWS requests and item sizes.

The prices below are what this code ASSUMES: AWS us-east-1 list prices as of PRICE_DATE, on-demand,
no free tier, no reserved capacity, no data transfer, no storage, no CloudWatch. Check them against
https://aws.amazon.com/pricing before quoting a figure in money; request counts and capacity units
are exact, the dollars are only as right as this table.

Capacity units come from the items as moto stores them just before and just after each write
(UnitMeter, hooked on the botocore clients; it reads moto's in-process backend, never a request),
by DynamoDB's published rules, the same for every design:
- table write: ceil(size / 1 KB) WRU per item written, the size being the larger of the item before
  and after a PutItem or UpdateItem, the deleted item's for a DeleteItem (1 when there was none);
  twice that inside TransactWriteItems;
- global secondary indexes (definitions read from moto's table.global_indexes, i.e. template.yaml):
  an item is in an index when it has the index's key attributes. A write that puts an item into an
  index, or changes what the index holds of it, writes the index once, billed ceil(projected size /
  1 KB) WRU (KEYS_ONLY: the table's and the index's keys; INCLUDE: those and the listed attributes;
  ALL: the whole item); a write that changes an index key, or removes it, deletes the old entry
  (billed on its projected size) and, if the item is still in the index, puts the new one; a
  delete removes the item from each index it was in. An update that leaves the projection as it was
  costs the index nothing. Index writes are NOT doubled by transactions. A write that failed (a
  condition, a cancelled transaction) changed nothing, so it writes no index;
- read: ceil(size / 4 KB) RRU per item read by GetItem/BatchGetItem (a key found nothing: 1),
  Query by the total size a page returned; half that when eventually consistent, twice in a transaction.
Item size follows DynamoDB's rule: attribute names plus values (numbers about 1 byte per 2 digits).
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

PRICE_DATE = "2026-11"
PRICE_REGION = "us-east-1"
MOTO_ACCOUNT = "123456789012"  # moto's default account


@dataclass(frozen=True)
class Prices:
    """USD, list price, PRICE_REGION as of PRICE_DATE: what the code assumes."""

    dynamodb_wru_per_million: float = 0.625  # on-demand write request unit (1 KB)
    dynamodb_rru_per_million: float = 0.125  # on-demand read request unit (4 KB, strongly consistent)
    lambda_requests_per_million: float = 0.20
    lambda_gb_second: float = 0.0000166667  # x86
    sqs_requests_per_million: float = 0.40  # standard queue, per 64 KB chunk
    eventbridge_events_per_million: float = 1.00  # custom events via PutEvents, per 64 KB chunk
    scheduler_invocations_per_million: float = 1.00  # EventBridge Scheduler, per schedule fired
    lambda_memory_mb: int = 512  # template.yaml DecideFunction MemorySize


PRICES = Prices()

# Lambda duration is priced on a MODEL, not on the handler's wall time here: on moto every AWS call
# runs in the handler's own thread (moto's time, which grows with what it stores, on a shared
# machine), so wall time would price the emulator. The model: the handler's time outside the AWS
# calls (measured: the product's own code) plus, per request, the round trip ASSUMED below
# (in-region, from Lambda, typical p50; not measured here). The measured wall is reported beside it.
ASSUMED_LATENCY_MS = {
    "dynamodb": 5.0,
    "dynamodb.BatchGetItem": 8.0,
    "dynamodb.Query": 8.0,
    "dynamodb.TransactWriteItems": 15.0,
    "events": 20.0,
    "scheduler": 25.0,
}


def assumed_latency_ms(name: str) -> float:
    """The round trip ASSUMED for one request "service.Operation"."""
    return ASSUMED_LATENCY_MS.get(name, ASSUMED_LATENCY_MS.get(name.partition(".")[0], 10.0))


KB = 1024
SQS_CHUNK = EVENTBRIDGE_CHUNK = 64 * KB
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


def value_size(value: dict[str, Any]) -> int:
    """Bytes of one AttributeValue in DynamoDB's item-size accounting."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        digits = len(str(inner).lstrip("-").replace(".", "").strip("0")) or 1
        return 1 + math.ceil(digits / 2)
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(v).encode()) for v in inner)
    if kind == "NS":
        return sum(value_size({"N": v}) for v in inner)
    if kind == "BS":
        return sum(len(v) for v in inner)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in inner.items())
    return len(json.dumps(inner))


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


@dataclass(frozen=True)
class IndexDefinition:
    """A global secondary index: its key attributes and what it projects (None: ALL)."""

    name: str
    keys: tuple[str, ...]
    projected: frozenset[str] | None

    def project(self, item: dict[str, Any] | None) -> dict[str, Any] | None:
        """What the index holds of `item` (DynamoDB JSON), None when the item is not in the index."""
        if item is None or any(k not in item for k in self.keys):
            return None
        if self.projected is None:
            return item
        return {k: v for k, v in item.items() if k in self.projected}


@dataclass(frozen=True)
class TableDefinition:
    keys: tuple[str, ...]
    indexes: tuple[IndexDefinition, ...]

    def key_of(self, item: dict[str, Any]) -> dict[str, Any]:
        return {k: item[k] for k in self.keys if k in item}


def _backend() -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[MOTO_ACCOUNT][PRICE_REGION]


def table_definition(table: str) -> TableDefinition:
    """Keys and global secondary indexes of a table, as moto holds them (created from template.yaml)."""
    found = _backend().get_table(table)
    keys = tuple(k for k in (found.hash_key_attr, found.range_key_attr) if k)
    indexes = []
    for index in found.global_indexes:
        kind = index.projection.get("ProjectionType", "ALL")
        projected: frozenset[str] | None = None
        if kind != "ALL":
            included = index.projection.get("NonKeyAttributes", []) if kind == "INCLUDE" else []
            projected = frozenset((*keys, *index.schema_key_attrs, *included))
        indexes.append(IndexDefinition(index.name, tuple(index.schema_key_attrs), projected))
    return TableDefinition(keys, tuple(indexes))


def stored_item(table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """An item as moto stores it now (DynamoDB JSON), read from the backend, not with a request."""
    try:
        found = _backend().get_item(table, key)
    except Exception:
        return None
    return found.to_json()["Attributes"] if found is not None else None  # type: ignore[no-any-return]


def index_writes(index: IndexDefinition, before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[int]:
    """The WRU of each write `index` takes when an item goes from `before` to `after` (None: absent)."""
    old, new = index.project(before), index.project(after)
    if old is None and new is None:
        return []
    if old is None:
        return [_wru(item_size(new or {}))]
    if new is None:
        return [_wru(item_size(old))]
    if any(old[k] != new[k] for k in index.keys):  # a key changed: delete the old entry, put the new one
        return [_wru(item_size(old)), _wru(item_size(new))]
    return [] if old == new else [_wru(item_size(new))]


def _wru(size: int) -> int:
    return max(1, math.ceil(size / KB))


def _rru(size: int) -> int:
    return max(1, math.ceil(size / (4 * KB)))


@dataclass
class UnitMeter:
    """Requests per (service, operation), DynamoDB WRU/RRU and bytes of items, EventBridge entries and chunks."""

    calls: Counter[str] = field(default_factory=Counter)
    wru: float = 0.0  # table writes
    wru_by: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))  # table writes by table
    index_wru: float = 0.0  # global secondary index writes
    index_wru_by: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))  # by index name
    rru: float = 0.0
    rru_by: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))  # by operation
    bytes_written: int = 0
    bytes_read: int = 0
    eventbridge_entries: int = 0
    eventbridge_chunks: int = 0
    published: dict[str, str] = field(default_factory=dict)  # decision_id -> Detail, as published
    call_seconds: float = 0.0  # wall time inside the metered calls (moto's, here)
    enabled: bool = True  # a disabled meter counts nothing (two meters share clients, one at a time)
    _tables: dict[str, TableDefinition] = field(default_factory=dict)

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-parameter-build", self._before)
        client.meta.events.register("before-call", self._start)
        client.meta.events.register("after-call", self._after)
        client.meta.events.register("after-call-error", self._stop)

    def assumed_latency_seconds(self) -> float:
        """The round trips of the metered requests, as ASSUMED_LATENCY_MS prices them."""
        return sum(assumed_latency_ms(name) * n for name, n in self.calls.items()) / 1000

    def _start(self, context: dict[str, Any], **_: Any) -> None:
        if self.enabled:
            context[f"cost_started_{id(self)}"] = time.perf_counter()

    def _stop(self, context: dict[str, Any], **_: Any) -> None:
        started = context.pop(f"cost_started_{id(self)}", None)
        if started is not None:
            self.call_seconds += time.perf_counter() - started

    def clear(self) -> None:
        self.calls.clear()
        self.wru = self.rru = self.index_wru = 0.0
        self.rru_by.clear()
        self.wru_by.clear()
        self.index_wru_by.clear()
        self.bytes_written = self.bytes_read = self.eventbridge_entries = self.eventbridge_chunks = 0
        self.published.clear()
        self.call_seconds = 0.0

    def total(self, service: str, *operations: str) -> int:
        return sum(
            n
            for name, n in self.calls.items()
            if name.partition(".")[0] == service and (not operations or name.partition(".")[2] in operations)
        )

    @property
    def total_wru(self) -> float:
        return self.wru + self.index_wru

    def _definition(self, table: str) -> TableDefinition:
        if table not in self._tables:
            self._tables[table] = table_definition(table)
        return self._tables[table]

    def _targets(self, operation: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any], int]]:
        """(table, request, factor) of each item a write request writes; request["Key"] is its key."""
        found: list[tuple[str, dict[str, Any], int]] = []

        def add(table: str, request: dict[str, Any], factor: int) -> None:
            key = request.get("Key") or self._definition(table).key_of(request.get("Item", {}))
            found.append((table, {**request, "Key": key}, factor))

        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            add(params["TableName"], {**params, "_kind": operation}, 1)
        elif operation == "TransactWriteItems":
            for entry in params.get("TransactItems", []):
                for kind, op in entry.items():
                    if kind != "ConditionCheck":
                        add(op["TableName"], {**op, "_kind": kind}, 2)
        elif operation == "BatchWriteItem":
            for table, requests in params.get("RequestItems", {}).items():
                for request in requests:
                    if "PutRequest" in request:
                        add(table, {**request["PutRequest"], "_kind": "Put"}, 1)
                    else:
                        add(table, {"Key": request["DeleteRequest"]["Key"], "_kind": "Delete"}, 1)
        return found

    def _before(self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if not self.enabled:
            return
        context["cost_params"] = params
        if model.service_model.service_name == "dynamodb" and model.name in WRITES:
            # The items as stored before the write: what an update or delete is billed on, and
            # which index entries it replaces.
            targets = self._targets(str(model.name), params)
            context["cost_writes"] = [(t, op, f, stored_item(t, op["Key"])) for t, op, f in targets]
        if model.name == "PutEvents":
            for entry in params.get("Entries", []):
                size = sum(len(str(entry.get(k, "")).encode()) for k in ("Source", "DetailType", "Detail")) + 14
                size += sum(len(str(r).encode()) for r in entry.get("Resources", []))
                self.eventbridge_entries += 1
                self.eventbridge_chunks += math.ceil(size / EVENTBRIDGE_CHUNK)
                detail = str(entry.get("Detail", ""))
                self.published[str(json.loads(detail).get("decision_id"))] = detail

    def _after(self, model: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        self._stop(context)
        if not self.enabled or "cost_params" not in context:
            return
        service, operation = str(model.service_model.service_name), str(model.name)
        self.calls[f"{service}.{operation}"] += 1
        if service != "dynamodb":
            return
        params: dict[str, Any] = context.get("cost_params", {})
        if operation in WRITES:
            for table, op, factor, before in context.get("cost_writes", []):
                self._write(table, op, factor, before)
        elif operation == "GetItem":
            self._read(operation, [parsed.get("Item")], params.get("ConsistentRead", False), per_item=True)
        elif operation == "BatchGetItem":
            for table, asked in params.get("RequestItems", {}).items():
                found = parsed.get("Responses", {}).get(table, [])
                missing = max(0, len(asked.get("Keys", [])) - len(found))
                self._read(operation, [*found, *([None] * missing)], asked.get("ConsistentRead", False), per_item=True)
        elif operation in ("Query", "Scan"):
            self._read(operation, parsed.get("Items", []), params.get("ConsistentRead", False), per_item=False)

    def _write(self, table: str, op: dict[str, Any], factor: int, before: dict[str, Any] | None) -> None:
        after = stored_item(table, op["Key"])
        if op["_kind"] in ("Delete", "DeleteItem"):
            size = item_size(before) if before else 1
        else:
            sizes = [item_size(i) for i in (before, after, op.get("Item")) if i]
            size = max(sizes, default=1)
        self.bytes_written += size
        self.wru += factor * _wru(size)
        self.wru_by[table] += factor * _wru(size)
        for index in self._definition(table).indexes:
            units = sum(index_writes(index, before, after))
            self.index_wru += units
            self.index_wru_by[index.name] += units

    def _read(self, operation: str, items: list[dict[str, Any] | None], consistent: bool, *, per_item: bool) -> None:
        sizes = [item_size(i) if i else 0 for i in items]
        self.bytes_read += sum(sizes)
        units = sum(_rru(s) for s in sizes) if per_item else _rru(sum(sizes))
        self.rru += units * (1.0 if consistent else 0.5)
        self.rru_by[operation] += units * (1.0 if consistent else 0.5)


@dataclass(frozen=True)
class Usage:
    """What a design used for `events` events."""

    events: int
    dynamodb_requests: int
    wru: float  # table writes
    rru: float
    lambda_invocations: int
    lambda_seconds: float  # handler wall time, all invocations
    sqs_requests: int  # 64 KB chunks: EventBridge -> SendMessage, ReceiveMessage, DeleteMessageBatch
    eventbridge_requests: int
    eventbridge_chunks: int  # PutEvents entries, in 64 KB chunks
    index_wru: float = 0.0  # global secondary index writes
    scheduler_invocations: int = 0  # schedules fired (releases)
    lambda_model_seconds: float | None = None  # the duration model (ASSUMED_LATENCY_MS); None: the wall

    def per_million(self, prices: Prices = PRICES) -> dict[str, float]:
        """USD per million events by line item, and the total."""
        scale = 1_000_000 / self.events
        seconds = self.lambda_seconds if self.lambda_model_seconds is None else self.lambda_model_seconds
        gb_seconds = seconds * prices.lambda_memory_mb / 1024
        lines = {
            "dynamodb_writes": self.wru * scale * prices.dynamodb_wru_per_million / 1e6,
            "dynamodb_index_writes": self.index_wru * scale * prices.dynamodb_wru_per_million / 1e6,
            "dynamodb_reads": self.rru * scale * prices.dynamodb_rru_per_million / 1e6,
            "lambda_requests": self.lambda_invocations * scale * prices.lambda_requests_per_million / 1e6,
            "lambda_duration": gb_seconds * scale * prices.lambda_gb_second,
            "sqs": self.sqs_requests * scale * prices.sqs_requests_per_million / 1e6,
            "eventbridge": self.eventbridge_chunks * scale * prices.eventbridge_events_per_million / 1e6,
            "scheduler": self.scheduler_invocations * scale * prices.scheduler_invocations_per_million / 1e6,
        }
        lines["total"] = sum(lines.values())
        lines["dynamodb"] = lines["dynamodb_writes"] + lines["dynamodb_index_writes"] + lines["dynamodb_reads"]
        return lines

    def as_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "dynamodb_requests": self.dynamodb_requests,
            "wru": self.wru,
            "index_wru": self.index_wru,
            "rru": self.rru,
            "lambda_invocations": self.lambda_invocations,
            "lambda_seconds_wall_on_moto": self.lambda_seconds,
            "lambda_seconds_priced": self.lambda_seconds
            if self.lambda_model_seconds is None
            else self.lambda_model_seconds,
            "scheduler_invocations": self.scheduler_invocations,
            "sqs_requests": self.sqs_requests,
            "eventbridge_requests": self.eventbridge_requests,
            "eventbridge_chunks": self.eventbridge_chunks,
            "usd_per_million_events": self.per_million(),
        }


def price_table(prices: Prices = PRICES) -> dict[str, Any]:
    return {"date": PRICE_DATE, "region": PRICE_REGION, **prices.__dict__}
