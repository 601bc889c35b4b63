"""Speed-ups for moto 5.2.5 that leave its answers unchanged, so a request costs the same on an
empty emulator as on one holding weeks of decisions (no real AWS service slows with its size).

Each one removes work that grows with stored state; none changes what moto answers, which
tests/integration/test_emulator_speedups.py checks by running one scripted sequence of calls with
and without them. They patch moto's classes, so they hold for in-process `mock_aws` and for the
threaded server alike, and they are installed by infra.local.emulator, the one emulator.

- DynamoDB TransactWriteItems: moto deep-copies every table a transaction names to roll back on
  failure (time and memory proportional to everything stored); here only the items it names are
  copied, and put back on failure.
- DynamoDB responses: moto walks each AttributeValue member by member through the service model;
  a value already in wire form (no binary) is copied as it is.
- SQS: moto reads the clock twice per stored message to find the visible ones, computes the queue's
  three message counts (three walks) on each send and each received message only to read one
  setting, and walks every message with list copies on each delete. Here: one clock read per walk,
  settings read without the counts, deletes found from the front (received messages are old).
- Server: moto lists its package directory (a stat per entry) on each request to find the service.
- EventBridge: each delivery to a target builds a JSONPath parser for the same constant paths.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import threading
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any

PINNED_MOTO = "5.2.5"

Undo = Callable[[], None]


class UnsupportedMoto(RuntimeError):
    """The speed-ups reach into moto's internals; they are checked against one version only."""


def check_pinned_version() -> None:
    found = metadata.version("moto")
    if found != PINNED_MOTO:
        raise UnsupportedMoto(
            f"moto {found} is installed, but the emulator's speed-ups (infra/local/moto_speedups.py) are written "
            f"and checked for moto {PINNED_MOTO}: install moto=={PINNED_MOTO} (pyproject.toml pins it), or port "
            "the speed-ups and re-run tests/integration/test_emulator_speedups.py"
        )


# --- DynamoDB: item-level rollback of TransactWriteItems -------------------------------------------

Saved = tuple[Any, Any, Any, bool, Any]  # table, hash value, range value, hash present, deep-copied Item or None


def _item_level_rollback() -> Undo:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    models: Any = importlib.import_module("moto.dynamodb.models")
    original = DynamoDBBackend.transact_write_items
    real_copy = models.copy

    class TablesNotCopied:
        """Stands in for the `copy` module inside moto.dynamodb.models: tables are not copied
        (moto's own rollback then puts the same table back: a no-op), anything else is."""

        def __getattr__(self, name: str) -> Any:
            return getattr(real_copy, name)

        def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
            return value if isinstance(value, Table) else real_copy.deepcopy(value, memo)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = _snapshot(self, transact_items)
        streams = {id(t): (t, len(t.stream_shard.items)) for t, *_ in saved if t.stream_shard is not None}
        try:
            original(self, transact_items)
        except BaseException:
            for table, hash_value, range_value, hash_present, item in reversed(saved):
                _put_back(table, hash_value, range_value, hash_present, item)
            for table, length in streams.values():
                del table.stream_shard.items[length:]
            raise

    models.copy = TablesNotCopied()
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]

    def undo() -> None:
        DynamoDBBackend.transact_write_items = original  # type: ignore[method-assign]
        models.copy = real_copy

    return undo


def _snapshot(backend: Any, transact_items: list[dict[str, Any]]) -> list[Saved]:
    """A deep copy of every item the transaction may change (or None where there is none)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    saved: list[Saved] = []
    for entry in transact_items:
        if len(entry) != 1:
            continue  # moto refuses it before changing anything
        op_type, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
        if table is None or op_type not in ("Put", "Update", "Delete"):
            continue
        try:
            attributes = op["Item"] if op_type == "Put" else op["Key"]
            hash_value = DynamoType(attributes[table.hash_key_attr])
            range_value = DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None
            hash_present = hash_value in table.items  # before get_item: it adds an empty partition
            current = table.get_item(hash_value, range_value)
        except Exception:  # noqa: S112 - a malformed operation: moto refuses it without changing anything
            continue
        saved.append((table, hash_value, range_value, hash_present, copy.deepcopy(current)))
    return saved


def _put_back(table: Any, hash_value: Any, range_value: Any, hash_present: bool, item: Any) -> None:
    if range_value is None:
        if item is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = item
        return
    partition = table.items[hash_value]
    if item is None:
        partition.pop(range_value, None)
    else:
        partition[range_value] = item
    if not partition and not hash_present:
        del table.items[hash_value]


# --- DynamoDB: AttributeValues already in wire form ----------------------------------------------

WIRE_SCALARS: dict[str, type] = {"S": str, "N": str, "BOOL": bool, "NULL": bool}


def wire_ready(value: Any) -> bool:
    """True for an AttributeValue dict already in DynamoDB JSON with no binary member."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    ((kind, inner),) = value.items()
    if kind in WIRE_SCALARS:
        return isinstance(inner, WIRE_SCALARS[kind])
    if kind in ("SS", "NS"):
        return isinstance(inner, list) and all(isinstance(v, str) for v in inner)
    if kind == "L":
        return isinstance(inner, list) and all(wire_ready(v) for v in inner)
    if kind == "M":
        return isinstance(inner, dict) and all(isinstance(k, str) and wire_ready(v) for k, v in inner.items())
    return False


def _plain_attribute_values() -> Undo:
    from moto.core.serialize import BaseJSONSerializer

    original = BaseJSONSerializer._serialize_type_structure

    def serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and wire_ready(value):
            self._default_serialize(serialized, value, shape, key)
            return
        original(self, serialized, value, shape, key)

    BaseJSONSerializer._serialize_type_structure = serialize_structure  # type: ignore[method-assign]

    def undo() -> None:
        BaseJSONSerializer._serialize_type_structure = original  # type: ignore[method-assign]

    return undo


# --- SQS -----------------------------------------------------------------------------------------

_sending = threading.local()  # set while SendMessage runs: it reads one setting from queue.attributes


def _sqs() -> Undo:
    from moto.sqs.exceptions import ReceiptHandleIsInvalid
    from moto.sqs.models import Queue, SQSBackend

    clock: Any = importlib.import_module("moto.sqs.models")  # its unix_time(_millis), read at each call as moto does

    saved: dict[tuple[type, str], Any] = {
        (Queue, name): Queue.__dict__[name]
        for name in (
            "messages",
            "approximate_number_of_messages",
            "approximate_number_of_messages_not_visible",
            "approximate_number_of_messages_delayed",
            "delete_message",
        )
    }
    saved |= {
        (SQSBackend, name): SQSBackend.__dict__[name]
        for name in ("send_message", "is_message_valid_based_on_retention_period")
    }

    def messages(self: Any) -> list[Any]:
        # Message.visible and .delayed each read the clock: read it once for the walk.
        now = clock.unix_time_millis()
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    def counted(kind: str) -> Callable[[Any], int]:
        def count(self: Any) -> int:
            if getattr(_sending, "active", False):
                return 0  # inside SendMessage, which reads only ContentBasedDeduplication from the attributes
            now = clock.unix_time_millis()
            if kind == "visible":
                return sum(1 for m in self._messages if now > m.visible_at and not now < m.delayed_until)
            if kind == "not_visible":
                return sum(1 for m in self._messages if not now > m.visible_at)
            return sum(1 for m in self._messages if now < m.delayed_until)

        return count

    def delete_message(self: Any, receipt_handle: str) -> None:
        if receipt_handle in self.deleted_messages:
            return  # already deleted: moto accepts it again
        with self._messages_lock:
            # Receipt handles are unique, so at most one message matches; received ones sit near the front.
            for index, message in enumerate(self._messages):
                if receipt_handle == message.receipt_handle or receipt_handle in message._old_receipt_handles:
                    self.pending_messages.discard(message)
                    self.deleted_messages.update(message.all_receipt_handles)
                    self._messages = self._messages[:index] + self._messages[index + 1 :]
                    return
        raise ReceiptHandleIsInvalid()

    original_send = SQSBackend.send_message

    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        _sending.active = True
        try:
            return original_send(self, *args, **kwargs)
        finally:
            _sending.active = False

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        # moto reads the period through get_queue_attributes, which computes every attribute first.
        retention_period = self.get_queue(queue_name).message_retention_period
        return bool(retention_period + message.sent_timestamp / 1000 > clock.unix_time())

    Queue.messages = property(messages)  # type: ignore[assignment,method-assign]
    for name, kind in (
        ("approximate_number_of_messages", "visible"),
        ("approximate_number_of_messages_not_visible", "not_visible"),
        ("approximate_number_of_messages_delayed", "delayed"),
    ):
        setattr(Queue, name, property(counted(kind)))
    Queue.delete_message = delete_message  # type: ignore[method-assign]
    SQSBackend.send_message = send_message  # type: ignore[method-assign]
    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]

    def undo() -> None:
        for (owner, name), value in saved.items():
            setattr(owner, name, value)

    return undo


# --- Server and EventBridge ----------------------------------------------------------------------


def _backends_listed_once() -> Undo:
    module: Any = importlib.import_module("moto.backends")
    original = module.list_of_moto_modules
    listed = tuple(original())
    module.list_of_moto_modules = lambda: listed

    def undo() -> None:
        module.list_of_moto_modules = original

    return undo


def _input_paths_parsed_once() -> Undo:
    module: Any = importlib.import_module("jsonpath_ng.ext")  # moto imports `parse` from here at each delivery
    original = module.parse
    module.parse = functools.lru_cache(maxsize=256)(original)

    def undo() -> None:
        module.parse = original

    return undo


SPEEDUPS: tuple[tuple[str, Callable[[], Undo]], ...] = (
    ("TransactWriteItems rolls back the items it names, not deep copies of whole tables", _item_level_rollback),
    ("DynamoDB AttributeValues already in wire form are serialized as they are", _plain_attribute_values),
    ("SQS: one clock read per walk of a queue, no message counts on send, deletes found from the front", _sqs),
    ("the server lists moto's service modules once, not on every request", _backends_listed_once),
    ("EventBridge parses its constant target input paths once", _input_paths_parsed_once),
)
NOTES = tuple(f"speed-up, moto's answers unchanged: {text}" for text, _ in SPEEDUPS)

_lock = threading.Lock()
_undo: list[Undo] = []


def install() -> None:
    """Installs every speed-up in this process (once; later calls do nothing)."""
    with _lock:
        if _undo:
            return
        check_pinned_version()
        for _, apply in SPEEDUPS:
            _undo.append(apply())


def uninstall() -> None:
    with _lock:
        while _undo:
            _undo.pop()()


def installed() -> bool:
    return bool(_undo)


@contextlib.contextmanager
def removed() -> Iterator[None]:
    """moto exactly as released, for as long as the block runs (the equivalence test's baseline)."""
    was = installed()
    uninstall()
    try:
        yield
    finally:
        if was:
            install()
