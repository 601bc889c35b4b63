"""List-price cost per million events from measured AWS requests and item sizes.

The prices below are what this code ASSUMES: AWS us-east-1 list prices as of PRICE_DATE, on-demand,
no free tier, no reserved capacity, no data transfer, no storage, no CloudWatch. Check them against
https://aws.amazon.com/pricing before quoting a figure in money; request counts and capacity units
are exact, the dollars are only as right as this table.

Capacity units come from sizes measured on the wire (UnitMeter, hooked on the botocore clients):
- write: ceil(item size / 1 KB) WRU per item written (for an update, the item as stored after it),
  twice that inside TransactWriteItems;
- read: ceil(size / 4 KB) RRU per item read by GetItem/BatchGetItem (a key found nothing: 1),
  Query by the total size a page returned; half that when eventually consistent, twice in a transaction.
Item size follows DynamoDB's rule: attribute names plus values (numbers about 1 byte per 2 digits).
"""

from __future__ import annotations

import json
import math
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
    lambda_memory_mb: int = 512  # template.yaml DecideFunction MemorySize


PRICES = Prices()
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


def _stored_item_size(table: str, key: dict[str, Any]) -> int:
    """The size of an item as moto now stores it (after an update), read from the backend, not a request."""
    from moto.dynamodb.models import dynamodb_backends

    try:
        found = dynamodb_backends[MOTO_ACCOUNT][PRICE_REGION].get_item(table, key)
    except Exception:
        return 0
    return item_size(found.to_json()["Attributes"]) if found is not None else 0


def _wru(size: int) -> int:
    return max(1, math.ceil(size / KB))


def _rru(size: int) -> int:
    return max(1, math.ceil(size / (4 * KB)))


@dataclass
class UnitMeter:
    """Requests per (service, operation), DynamoDB WRU/RRU and bytes of items, EventBridge entries and chunks."""

    calls: Counter[str] = field(default_factory=Counter)
    wru: float = 0.0
    rru: float = 0.0
    rru_by: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))  # by operation
    bytes_written: int = 0
    bytes_read: int = 0
    eventbridge_entries: int = 0
    eventbridge_chunks: int = 0
    published: dict[str, str] = field(default_factory=dict)  # decision_id -> Detail, as published

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-parameter-build", self._before)
        client.meta.events.register("after-call", self._after)

    def clear(self) -> None:
        self.calls.clear()
        self.wru = self.rru = 0.0
        self.rru_by.clear()
        self.bytes_written = self.bytes_read = self.eventbridge_entries = self.eventbridge_chunks = 0
        self.published.clear()

    def total(self, service: str, *operations: str) -> int:
        return sum(
            n
            for name, n in self.calls.items()
            if name.partition(".")[0] == service and (not operations or name.partition(".")[2] in operations)
        )

    def _before(self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["cost_params"] = params
        if model.name == "PutEvents":
            for entry in params.get("Entries", []):
                size = sum(len(str(entry.get(k, "")).encode()) for k in ("Source", "DetailType", "Detail")) + 14
                size += sum(len(str(r).encode()) for r in entry.get("Resources", []))
                self.eventbridge_entries += 1
                self.eventbridge_chunks += math.ceil(size / EVENTBRIDGE_CHUNK)
                detail = str(entry.get("Detail", ""))
                self.published[str(json.loads(detail).get("decision_id"))] = detail

    def _after(self, model: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        service, operation = str(model.service_model.service_name), str(model.name)
        self.calls[f"{service}.{operation}"] += 1
        if service != "dynamodb":
            return
        params: dict[str, Any] = context.get("cost_params", {})
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            self._write(params["TableName"], params, 1)
        elif operation == "TransactWriteItems":
            for entry in params.get("TransactItems", []):
                for kind, op in entry.items():
                    if kind != "ConditionCheck":
                        self._write(op["TableName"], {**op, "_kind": kind}, 2)
        elif operation == "BatchWriteItem":
            for table, requests in params.get("RequestItems", {}).items():
                for request in requests:
                    if "PutRequest" in request:
                        self._write(table, request["PutRequest"], 1)
                    else:
                        self._write(table, {"Key": request["DeleteRequest"]["Key"]}, 1)
        elif operation == "GetItem":
            self._read(operation, [parsed.get("Item")], params.get("ConsistentRead", False), per_item=True)
        elif operation == "BatchGetItem":
            for table, asked in params.get("RequestItems", {}).items():
                found = parsed.get("Responses", {}).get(table, [])
                missing = max(0, len(asked.get("Keys", [])) - len(found))
                self._read(operation, [*found, *([None] * missing)], asked.get("ConsistentRead", False), per_item=True)
        elif operation in ("Query", "Scan"):
            self._read(operation, parsed.get("Items", []), params.get("ConsistentRead", False), per_item=False)

    def _write(self, table: str, op: dict[str, Any], factor: int) -> None:
        if "Item" in op:
            size = item_size(op["Item"])
        elif op.get("_kind") == "Delete" or "UpdateExpression" not in op:
            size = 1
        else:
            size = _stored_item_size(table, op["Key"])
        self.bytes_written += size
        self.wru += factor * _wru(size)

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
    wru: float
    rru: float
    lambda_invocations: int
    lambda_seconds: float  # handler wall time, all invocations
    sqs_requests: int  # 64 KB chunks: EventBridge -> SendMessage, ReceiveMessage, DeleteMessageBatch
    eventbridge_requests: int
    eventbridge_chunks: int  # PutEvents entries, in 64 KB chunks

    def per_million(self, prices: Prices = PRICES) -> dict[str, float]:
        """USD per million events by line item, and the total."""
        scale = 1_000_000 / self.events
        gb_seconds = self.lambda_seconds * prices.lambda_memory_mb / 1024
        lines = {
            "dynamodb_writes": self.wru * scale * prices.dynamodb_wru_per_million / 1e6,
            "dynamodb_reads": self.rru * scale * prices.dynamodb_rru_per_million / 1e6,
            "lambda_requests": self.lambda_invocations * scale * prices.lambda_requests_per_million / 1e6,
            "lambda_duration": gb_seconds * scale * prices.lambda_gb_second,
            "sqs": self.sqs_requests * scale * prices.sqs_requests_per_million / 1e6,
            "eventbridge": self.eventbridge_chunks * scale * prices.eventbridge_events_per_million / 1e6,
        }
        lines["total"] = sum(lines.values())
        return lines

    def as_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "dynamodb_requests": self.dynamodb_requests,
            "wru": self.wru,
            "rru": self.rru,
            "lambda_invocations": self.lambda_invocations,
            "lambda_seconds": self.lambda_seconds,
            "sqs_requests": self.sqs_requests,
            "eventbridge_requests": self.eventbridge_requests,
            "eventbridge_chunks": self.eventbridge_chunks,
            "usd_per_million_events": self.per_million(),
        }


def price_table(prices: Prices = PRICES) -> dict[str, Any]:
    return {"date": PRICE_DATE, "region": PRICE_REGION, **prices.__dict__}
