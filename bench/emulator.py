"""The AWS emulator the request-counting benchmark runs on: in-process moto with every data
resource of template.yaml, the decide function's environment, and request counters hooked on
the botocore clients.

Two emulator speed-ups live here, both leaving what moto answers unchanged (tests/test_bench_smoke.py
checks them), so that ten thousand past decisions fit in the time budget:
- moto's TransactWriteItems deep-copies every table it touches before each transaction (to roll
  back on failure), so each approval costs time proportional to the whole decision log: seconds
  per request at ten thousand logged decisions, an artefact no real DynamoDB has.
  `item_level_rollback()` snapshots only the items the transaction names.
- moto serializes every DynamoDB AttributeValue of a response member by member through the
  service model, thousands of lookups per full ledger item; `plain_attribute_values()` copies an
  AttributeValue that is already in wire form (no binary) as it is.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

REGION = "us-east-1"

# What tests/conftest.py sets before any boto3 client exists: throwaway credentials, one region, no X-Ray.
BASE_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # moto accepts any credentials
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
}
UNSET = ("AWS_ENDPOINT_URL", "AWS_PROFILE")

EMULATOR_NOTES = (
    "moto in-process (mock_aws), resources created by infra.local.provision from template.yaml",
    "speed-up: TransactWriteItems rollback snapshots only the named items (moto deep-copies whole tables)",
    "speed-up: DynamoDB AttributeValues already in wire form are serialized as they are",
)


WIRE_SCALARS = {"S": str, "N": str, "BOOL": bool, "NULL": bool}


def _wire_ready(value: Any) -> bool:
    """True for an AttributeValue dict already in DynamoDB JSON with no binary member."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    ((kind, inner),) = value.items()
    if kind in WIRE_SCALARS:
        return isinstance(inner, WIRE_SCALARS[kind])
    if kind in ("SS", "NS"):
        return isinstance(inner, list) and all(isinstance(v, str) for v in inner)
    if kind == "L":
        return isinstance(inner, list) and all(_wire_ready(v) for v in inner)
    if kind == "M":
        return isinstance(inner, dict) and all(isinstance(k, str) and _wire_ready(v) for k, v in inner.items())
    return False


@contextlib.contextmanager
def plain_attribute_values() -> Iterator[None]:
    """moto's JSON response serializer, copying ready AttributeValues instead of walking their shape."""
    from moto.core.serialize import BaseJSONSerializer

    original = BaseJSONSerializer._serialize_type_structure

    def serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and _wire_ready(value):
            self._default_serialize(serialized, value, shape, key)
            return
        original(self, serialized, value, shape, key)

    BaseJSONSerializer._serialize_type_structure = serialize_structure  # type: ignore[method-assign]
    try:
        yield
    finally:
        BaseJSONSerializer._serialize_type_structure = original  # type: ignore[method-assign]


@contextlib.contextmanager
def item_level_rollback() -> Iterator[None]:
    """moto's TransactWriteItems with per-item instead of per-table rollback snapshots."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    models: Any = importlib.import_module("moto.dynamodb.models")
    original = DynamoDBBackend.transact_write_items
    real_copy = models.copy

    class _TablesNotCopied:
        """Stands in for the `copy` module inside moto.dynamodb.models: tables are not copied."""

        def __getattr__(self, name: str) -> Any:
            return getattr(real_copy, name)

        def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
            return value if isinstance(value, Table) else real_copy.deepcopy(value, memo)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = _snapshot(self, transact_items)
        try:
            original(self, transact_items)
        except Exception:
            for table_name, key, attributes in reversed(saved):
                if attributes is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attributes)
            raise

    models.copy = _TablesNotCopied()
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    try:
        yield
    finally:
        DynamoDBBackend.transact_write_items = original  # type: ignore[method-assign]
        models.copy = real_copy


def _snapshot(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], Any]]:
    """(table, key, item attributes or None) for every item the transaction may change."""
    saved: list[tuple[str, dict[str, Any], Any]] = []
    for entry in transact_items:
        if len(entry) != 1:
            continue  # moto rejects it before changing anything
        op_type, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName"))
        if table is None or op_type == "ConditionCheck":
            continue
        try:
            if op_type == "Put":
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            current = backend.get_item(table.name, key)
        except Exception:  # a malformed operation: moto rejects it before changing anything
            continue
        attributes = copy.deepcopy(current.to_json()["Attributes"]) if current is not None else None
        saved.append((table.name, key, attributes))
    return saved


@dataclass
class RequestCounter:
    """Counts API calls (before-call), HTTP attempts (before-send), bytes and time per (service, operation)."""

    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    attempts: Counter[tuple[str, str]] = field(default_factory=Counter)
    bytes_sent: Counter[tuple[str, str]] = field(default_factory=Counter)
    bytes_received: Counter[tuple[str, str]] = field(default_factory=Counter)
    entries: Counter[tuple[str, str]] = field(default_factory=Counter)  # PutEvents entries, batch sizes
    detail_types: Counter[str] = field(default_factory=Counter)  # of the PutEvents entries
    timed: defaultdict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))  # seconds
    clients: list[Any] = field(default_factory=list)
    _counting_next: bool = False  # the next TransactWriteItems is the per-batch stats count

    def attach(self, client: Any) -> None:
        events = client.meta.events
        events.register("before-parameter-build", self._before_parameter_build)
        events.register("before-call", self._before_call)
        events.register("before-send", self._before_send)
        events.register("after-call", self._after_call)
        events.register("after-call-error", self._after_call_error)
        self.clients.append(client)

    def clear(self) -> None:
        for counter in (self.calls, self.attempts, self.bytes_sent, self.bytes_received, self.entries):
            counter.clear()
        self.detail_types.clear()
        self.timed.clear()

    @property
    def seconds(self) -> float:
        """Time spent inside the counted calls: client-side serialization, the emulator, parsing."""
        return float(sum(self.timed.values()))

    def total(self, service: str, *operations: str) -> int:
        return sum(n for (s, op), n in self.calls.items() if s == service and (not operations or op in operations))

    def by_operation(self) -> dict[str, int]:
        return {f"{service}.{op}": n for (service, op), n in sorted(self.calls.items())}

    def ms_per_call(self) -> dict[str, float]:
        return {
            f"{service}.{op}": 1000 * self.timed[(service, op)] / n for (service, op), n in sorted(self.calls.items())
        }

    @staticmethod
    def _name(model: Any) -> tuple[str, str]:
        return str(model.service_model.service_name), str(model.name)

    def _before_parameter_build(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        """The caller's own parameters: how many entries a batched call carries."""
        for list_param in ("Entries", "TransactItems"):
            if isinstance(params.get(list_param), list):
                self.entries[self._name(model)] += len(params[list_param])
        if model.name == "PutEvents":
            self.detail_types.update(str(e.get("DetailType")) for e in params.get("Entries", []))
        if model.name == "TransactWriteItems":
            # The stats count (one per batch) marks log entries counted_at: report it apart from decision writes.
            self._counting_next = any(
                "counted_at" in str(item.get("Update", {}).get("UpdateExpression", ""))
                for item in params["TransactItems"]
            )

    def _before_call(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        name = self._name(model)
        if self._counting_next and name[1] == "TransactWriteItems":
            name, self._counting_next = (name[0], "TransactWriteItems:counting"), False
        self.calls[name] += 1
        context["bench_started"] = time.perf_counter()
        context["bench_name"] = name

    def _before_send(self, request: Any, **_: Any) -> None:
        name = request.context.get("bench_name", ("?", "?"))
        self.attempts[name] += 1
        body = request.body or b""
        self.bytes_sent[name] += len(body if isinstance(body, bytes | bytearray) else str(body).encode())

    def _after_call(self, http_response: Any, context: dict[str, Any], **_: Any) -> None:
        self._stop(context)
        name = context.get("bench_name", ("?", "?"))
        with contextlib.suppress(Exception):
            self.bytes_received[name] += len(http_response.content or b"")

    def _after_call_error(self, context: dict[str, Any], **_: Any) -> None:
        self._stop(context)

    def _stop(self, context: dict[str, Any]) -> None:
        started = context.pop("bench_started", None)
        if started is not None:
            self.timed[context.get("bench_name", ("?", "?"))] += time.perf_counter() - started


@dataclass
class Emulator:
    stack: Any  # infra.local.provision.ProvisionedResources
    product: RequestCounter  # calls the product makes through shared.adapters.aws.client(...)
    harness: RequestCounter  # calls this harness makes as the upstream system and as Lambda's poller
    events: Any  # the harness's EventBridge client
    sqs: Any  # the harness's SQS client
    dynamodb: Any  # the harness's DynamoDB client (for inspection after a run)

    def product_clients_unchanged(self) -> bool:
        """True while the product still uses the very clients the counter is hooked on, and no other."""
        from shared.adapters import aws

        created = aws.client.cache_info().currsize
        hooked = all(aws.client(c.meta.service_model.service_name) is c for c in self.product.clients)
        return hooked and created == len(self.product.clients)


@contextlib.contextmanager
def emulator() -> Iterator[Emulator]:
    """A fresh moto with the template's resources, the decide function's environment, and counters.

    The environment is restored and the product's wiring reset on the way out.
    """
    saved = dict(os.environ)
    os.environ.update(BASE_ENVIRONMENT)
    for name in UNSET:
        os.environ.pop(name, None)
    import boto3
    from moto import mock_aws

    from infra.local.provision import provision
    from shared import wiring
    from shared.adapters import aws
    from shared.adapters.clock import EventClock

    try:
        with mock_aws(), item_level_rollback(), plain_attribute_values():
            session = boto3.session.Session(region_name=REGION)
            stack = provision(session)
            os.environ.update(stack.environment("DecideFunction"))
            wiring.reset()
            wiring.use_clock(EventClock())
            product, harness = RequestCounter(), RequestCounter()
            for service in ("dynamodb", "events", "sqs"):
                product.attach(aws.client(service))
            bench = Emulator(
                stack, product, harness, session.client("events"), session.client("sqs"), session.client("dynamodb")
            )
            for client in (bench.events, bench.sqs, bench.dynamodb):
                harness.attach(client)
            yield bench
    finally:
        os.environ.clear()
        os.environ.update(saved)
        wiring.reset()
