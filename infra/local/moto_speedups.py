"""Speed-ups for moto 5.2.5 that leave its answers unchanged, so a request costs the same on an
empty emulator as on one holding weeks of decisions (no real AWS service slows with its size).

Each one removes work that grows with stored state; none changes what moto answers, which
tests/integration/test_emulator_speedups.py checks by running one scripted sequence of calls with
and without them. They patch moto's classes, so they hold for in-process `mock_aws` and for the
threaded server alike, and they are installed by infra.local.emulator, the one emulator.

- DynamoDB TransactWriteItems: moto deep-copies every table a transaction names to roll back on
  failure (time and memory proportional to everything stored); here only the items it names are
  copied, and put back on failure.
- DynamoDB Query: moto sorts every item of the table and tests each against the key condition, for
  an index (GSI, LSI) and for the table alike. Here the table's own query reads the partition of its
  hash key, and a query on an index reads the items filed under its hash key value in an index the
  speed-up keeps per table and attribute (built at the first query on that attribute; puts, deletes,
  fetches by key, updates and rollbacks mark the keys they touch, re-filed before the next query).
  moto then runs its own query over those items, in its own order: same filters, pages and errors.
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
import weakref
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
    _mark(table, hash_value, range_value)  # written straight into table.items: the key index must look again
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


# --- DynamoDB: Query reads the items of the key it asks for ----------------------------------------

Key = tuple[Any, Any]  # an item's primary key: hash DynamoType, range DynamoType or None

_epoch = [0]  # bumped at each install: an index built before (writes since unseen) is not trusted
_indexes: weakref.WeakKeyDictionary[Any, _KeyIndex] = weakref.WeakKeyDictionary()  # Table -> its index
_indexes_lock = threading.Lock()
_local = threading.local()  # .only: (table, items) while a query runs; .updating: keys an update fetched


class _KeyIndex:
    """One table's items by the value of each attribute a Query on an index has asked for. Writes
    only mark the primary keys they touch (puts, deletes, and every item fetched by key, since
    updates change fetched items in place); a query first re-files the marked keys from the table
    as it now is, so the index always holds every item whose attribute has the queried value."""

    def __init__(self, table: Any) -> None:
        self.table = weakref.ref(table)
        self.epoch = _epoch[0]
        self.lock = threading.Lock()
        self.by_value: dict[str, dict[Any, dict[Key, Any]]] = {}  # attribute -> value -> key -> Item
        self.unhashable: dict[str, dict[Key, Any]] = {}  # attribute -> items with a value no dict can key
        self.filed: dict[Key, dict[str, Any]] = {}  # key -> attribute -> the value it is filed under
        self.marked: set[Key] = set()

    def candidates(self, attribute: str, value: Any) -> list[Any]:
        """A superset of the items whose `attribute` equals `value` (equal hash for equal DynamoTypes)."""
        with self.lock:
            table = self.table()
            if attribute not in self.by_value:
                self.by_value[attribute], self.unhashable[attribute] = {}, {}
                for key, item in _every_item(table):
                    self._file(key, item, (attribute,))
            self._refile_marked(table)
            found = dict(self.by_value[attribute].get(value, {}))
            found.update(self.unhashable[attribute])
            return list(found.values())

    def _refile_marked(self, table: Any) -> None:
        marked, self.marked = self.marked, set()
        for key in marked:
            for attribute, value in self.filed.pop(key, {}).items():
                if value is _UNHASHABLE:
                    self.unhashable[attribute].pop(key, None)
                    continue
                bucket = self.by_value[attribute][value]
                bucket.pop(key, None)
                if not bucket:
                    del self.by_value[attribute][value]  # values that come and go (times) leave nothing behind
            item = _current_item(table, key)
            if item is not None:
                self._file(key, item, tuple(self.by_value))

    def _file(self, key: Key, item: Any, attributes: tuple[str, ...]) -> None:
        for attribute in attributes:
            value = item.attrs.get(attribute)
            if value is None:
                continue
            try:
                self.by_value[attribute].setdefault(value, {})[key] = item
            except TypeError:  # a list, map or set under this name: always a candidate
                value = _UNHASHABLE
                self.unhashable[attribute][key] = item
            self.filed.setdefault(key, {})[attribute] = value


_UNHASHABLE = object()


def _every_item(table: Any) -> Iterator[tuple[Key, Any]]:
    from moto.dynamodb.models.dynamo_type import Item

    for partition in list(table.items.values()):
        if isinstance(partition, Item):
            yield (partition.hash_key, None), partition
        elif isinstance(partition, dict):
            for item in list(partition.values()):
                if isinstance(item, Item):
                    yield (item.hash_key, item.range_key), item


def _current_item(table: Any, key: Key) -> Any:
    """The item stored under `key` now, or None; never adds an empty partition (table.items is a defaultdict)."""
    from moto.dynamodb.models.dynamo_type import Item

    hash_value, range_value = key
    partition = dict.get(table.items, hash_value)
    if range_value is not None:
        partition = partition.get(range_value) if isinstance(partition, dict) else None
    return partition if isinstance(partition, Item) else None


def _mark(table: Any, hash_value: Any, range_value: Any) -> None:
    index = _indexes.get(table)
    if index is not None:
        with index.lock:
            index.marked.add((hash_value, range_value if table.range_key_attr else None))
    updating = getattr(_local, "updating", None)
    if updating is not None:
        updating.append((table, hash_value, range_value))


def _index_of(table: Any) -> _KeyIndex:
    with _indexes_lock:
        index = _indexes.get(table)
        if index is None or index.epoch != _epoch[0]:
            index = _indexes[table] = _KeyIndex(table)
        return index


def _in_moto_order(items: list[Any]) -> list[Any]:
    # Table.all_items' own order, so equal sort keys later keep the order moto gives them.
    return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)


def _keyed_queries() -> Undo:
    import inspect

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table

    saved = {name: Table.__dict__[name] for name in ("query", "all_items", "get_item", "put_item", "delete_item")}
    original_update = DynamoDBBackend.update_item
    signature = inspect.signature(saved["query"])
    _epoch[0] += 1

    def candidates(table: Any, arguments: dict[str, Any]) -> list[Any] | None:
        """The items the query can match, or None to let moto look at every item."""
        index_name = arguments.get("index_name")
        if not index_name:
            hash_value = arguments.get("hash_key")
            if hash_value is None:
                return None
            partition = dict.get(table.items, hash_value)
            if isinstance(partition, dict):
                return [item for item in partition.values() if isinstance(item, Item)]
            return [partition] if isinstance(partition, Item) else []
        conditions = arguments.get("hash_key_conditions") or []
        if not conditions or index_name not in {index.name for index in table.all_indexes()}:
            return None
        attribute, value = conditions[0]
        try:
            hash(value)
        except TypeError:
            return None
        return _index_of(table).candidates(attribute, value)

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            arguments = signature.bind(self, *args, **kwargs).arguments
        except TypeError:
            return saved["query"](self, *args, **kwargs)  # moto refuses it as it would
        found = candidates(self, arguments)
        if found is None:
            return saved["query"](self, *args, **kwargs)
        _local.only = (self, _in_moto_order(found))
        try:
            return saved["query"](self, *args, **kwargs)
        finally:
            _local.only = None

    def all_items(self: Any) -> list[Any]:
        only = getattr(_local, "only", None)
        if only is not None and only[0] is self:
            return list(only[1])
        return saved["all_items"](self)  # type: ignore[no-any-return]

    def get_item(self: Any, hash_key: Any, range_key: Any = None, *args: Any, **kwargs: Any) -> Any:
        found = saved["get_item"](self, hash_key, range_key, *args, **kwargs)
        if found is not None:
            _mark(self, hash_key, range_key)  # the caller may change it in place (UpdateItem does)
        return found

    def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        item = saved["put_item"](self, *args, **kwargs)
        _mark(self, item.hash_key, item.range_key)
        return item

    def delete_item(self: Any, hash_key: Any, range_key: Any) -> Any:
        try:
            return saved["delete_item"](self, hash_key, range_key)
        finally:
            _mark(self, hash_key, range_key)

    def update_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        # Marked again once the update is done: a query between the fetch and the change (two
        # threads on in-process moto) would otherwise file the item under its old value for good.
        outer = getattr(_local, "updating", None)
        _local.updating = touched = [] if outer is None else outer
        try:
            return original_update(self, *args, **kwargs)
        finally:
            if outer is None:
                _local.updating = None
                for table, hash_value, range_value in touched:
                    _mark(table, hash_value, range_value)

    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]
    Table.get_item = get_item  # type: ignore[method-assign]
    Table.put_item = put_item  # type: ignore[method-assign]
    Table.delete_item = delete_item  # type: ignore[method-assign]
    DynamoDBBackend.update_item = update_item  # type: ignore[method-assign]

    def undo() -> None:
        for name, value in saved.items():
            setattr(Table, name, value)
        DynamoDBBackend.update_item = original_update  # type: ignore[method-assign]
        with _indexes_lock:
            _indexes.clear()

    return undo


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
    (
        "DynamoDB Query looks at the items of the key it asks for (an index kept by key), not at every item",
        _keyed_queries,
    ),
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
