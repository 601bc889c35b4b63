"""The AWS emulator the request-counting benchmark runs on: in-process moto with every data
resource of template.yaml, the decide function's environment, and request counters hooked on
the botocore clients.

moto here is the one emulator (infra.local.emulator): the same speed-ups, answers unchanged, as
`governor local`, `governor replay` and the tests run; the bench has none of its own.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from bench import shards
from bench.shards import StreamWindow
from infra.local import emulator as emulator_module

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

LOG_STREAM = "log-stream"  # the label of the log stream function's requests (RequestCounter.label)

EMULATOR_NOTES = (
    "moto in-process (mock_aws), resources created by infra.local.provision from template.yaml",
    *emulator_module.NOTES,
)


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
    # While set, calls are recorded as "Operation:label": the log stream function's (LOG_STREAM)
    # requests apart from the decide function's.
    label: str | None = None

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
        if self.label:
            name = (name[0], f"{name[1]}:{self.label}")
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

    from infra import template
    from infra.local.provision import provision
    from shared import wiring
    from shared.adapters import aws
    from shared.adapters.clock import EventClock

    try:
        emulator_module.install()
        with mock_aws():
            session = boto3.session.Session(region_name=REGION)
            stack = provision(session)
            # Every function runs in this process (decide, the log stream's, release), as in the
            # local stack: each one's variables, the decide function's last.
            for function in (*sorted(set(template.handlers()) - {"DecideFunction"}), "DecideFunction"):
                os.environ.update(stack.environment(function))
            wiring.reset()
            wiring.use_clock(EventClock())
            product, harness = RequestCounter(), RequestCounter()
            # scheduler: held follow-ups get a one-time schedule (issue 11); hooked up front like the
            # others, so its requests are counted and product_clients_unchanged stays a real check.
            for service in ("dynamodb", "events", "sqs", "scheduler"):
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


@dataclass
class Invocations:
    """Lambda invocations of one function and their handler wall time."""

    count: int = 0
    seconds: float = 0.0
    outside_aws_seconds: float = 0.0  # of that, outside the metered AWS calls

    def add(self, other: Invocations) -> None:
        self.count += other.count
        self.seconds += other.seconds
        self.outside_aws_seconds += other.outside_aws_seconds

    def plus(self, other: Invocations) -> Invocations:
        return Invocations(
            self.count + other.count,
            self.seconds + other.seconds,
            self.outside_aws_seconds + other.outside_aws_seconds,
        )

    def since(self, before: Invocations) -> Invocations:
        return Invocations(
            self.count - before.count,
            self.seconds - before.seconds,
            self.outside_aws_seconds - before.outside_aws_seconds,
        )


@dataclass
class TimedHandler:
    """A function's handler, counted and timed; `in_aws` reads the seconds spent in metered AWS calls
    so far, to tell the function's own time from its calls'."""

    handler: Callable[[dict[str, Any], Any], Any]
    in_aws: Callable[[], float]
    calls: Invocations = field(default_factory=Invocations)
    after: Callable[[], None] | None = None  # told after each invocation (a bench's per-invocation tally)

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        in_aws = self.in_aws()
        started = time.perf_counter()
        try:
            return self.handler(event, context)
        finally:
            took = time.perf_counter() - started
            self.calls.count += 1
            self.calls.seconds += took
            self.calls.outside_aws_seconds += took - (self.in_aws() - in_aws)
            if self.after is not None:
                self.after()


DECIDE_BATCH = 10  # the decide queue's BatchSize: the bench decides in tens


@dataclass
class StreamReader:
    """One reader of the decision log's stream (a function and its event source mapping), with the
    batches a shard of production's stream would hand it (bench.shards): once `window` is full, it
    gets what was committed since its last drain, in batches of `sizes` records when a shard's
    window holds fewer than a decide batch."""

    poller: Any
    timed: TimedHandler
    window: StreamWindow
    sizes: BatchSizes | None = None

    def drain(self) -> Invocations:
        before = replace(self.timed.calls)
        self.poller.drain()
        return self.timed.calls.since(before)


@dataclass
class BatchSizes:
    """Batch sizes averaging `events` (1.45 -> 1, 2, 1, 2, 1, 1, 2, ...): `next()` is the next
    batch's size, `took(n)` says a batch of n was handed (a read that found nothing takes none)."""

    events: float
    carried: float = 0.0

    def next(self) -> int:
        return max(1, int(self.carried + self.events + 1e-9))

    def took(self, records: int) -> None:
        self.carried += self.events - records


@dataclass
class LogStream:
    """The decision log's stream readers (LogStreamFunction publishing, LogCountFunction counting),
    as the local stack runs them (infra.local.streams: Lambda's event source mappings), for a bench
    on `emulator()`, each handed the batches a shard of production's stream would hand it at 1 M
    events a day (bench.shards). Their stream reads are free (Lambda's) and not counted; what the
    functions ask of AWS goes through the product's clients, counted like the decide function's."""

    readers: list[StreamReader]

    def decided(self, events: int, every_batch: bool = False) -> tuple[Invocations, bool]:
        """`events` more were decided: drains each reader whose window is full (every reader with
        `every_batch`); their invocations, and whether the publishing reader was drained (its
        drains are when held follow-ups get scheduled)."""
        took, published = Invocations(), False
        for reader in self.readers:
            if reader.window.add(events) or every_batch:
                took = took.plus(reader.drain())
                published = published or reader.poller.source.function == shards.PUBLISHING
        return took, published

    def flush(self) -> Invocations:
        """The end of a run: each reader drains what still waits for it."""
        took = Invocations()
        for reader in self.readers:
            if reader.window.flush():
                took = took.plus(reader.drain())
        return took

    def drain(self, function: str | None = None) -> Invocations:
        """Every reader (or only `function`'s) on everything committed since its last drain."""
        took = Invocations()
        for reader in self.readers:
            if function is None or reader.poller.source.function == function:
                took = took.plus(reader.drain())
        return took

    def skip(self) -> None:
        """Moves past every record committed so far without handing it to the functions (a
        history decided before the measured events, announced and counted by nobody)."""
        for reader in self.readers:
            handler, reader.poller.handler = reader.poller.handler, lambda event, context: {"batchItemFailures": []}
            try:
                reader.poller.drain()
            finally:
                reader.poller.handler = handler


def log_stream(stack: Any, in_aws: Callable[[], float], shard_count: int | None = None) -> LogStream | None:
    """The decision log's stream readers of this stack, or None while the template has none (the
    decide function then publishes and counts itself). Batches are sized for `shard_count` shards
    (default: the full log's, bench.shards.log_shards())."""
    try:
        from infra.local import streams
    except ImportError:
        return None
    sources = {s.function: s for s in streams.stream_sources() if s.table == "DecisionLogTable"}
    if not sources:
        return None
    readers = []
    for poller in streams.log_stream(stack).pollers:
        timed = TimedHandler(sources[poller.source.function].load(), in_aws)
        poller.handler = timed
        events = shards.stream_batch_events(poller.source.function, shards=shard_count)
        if events < DECIDE_BATCH:  # a shard's window holds less than a decide batch: split it
            sizes = BatchSizes(events)
            readers.append(StreamReader(poller, timed, StreamWindow(events=1.0), sizes))
            poller.batch_limit, poller.batch_taken = sizes.next, sizes.took
        else:
            readers.append(StreamReader(poller, timed, StreamWindow(events=events)))
    return LogStream(readers)
