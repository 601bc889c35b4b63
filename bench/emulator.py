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


@dataclass
class LogStream:
    """The decision log's stream consumer (LogStreamFunction), as the local stack runs it
    (infra.local.streams: Lambda's event source mapping), for a bench on `emulator()`: `drain()`
    hands it every record committed since the last drain, as Lambda would, and answers its
    invocations and time. Its stream reads are free (Lambda's) and not counted; what the function
    asks of AWS goes through the product's clients, counted like the decide function's."""

    poller: Any
    timed: TimedHandler

    def drain(self) -> Invocations:
        before = replace(self.timed.calls)
        self.poller.drain()
        return self.timed.calls.since(before)

    def skip(self) -> None:
        """Moves past every record committed so far without handing it to the function (a
        history decided before the measured events, announced by nobody, as before the stream)."""
        handler, self.poller.handler = self.poller.handler, lambda event, context: {"batchItemFailures": []}
        try:
            self.poller.drain()
        finally:
            self.poller.handler = handler


def log_stream(stack: Any, in_aws: Callable[[], float]) -> LogStream | None:
    """The decision log's stream consumer of this stack, or None while the template has none (the
    decide function then publishes and counts itself)."""
    try:
        from infra.local import streams
    except ImportError:
        return None
    sources = [s for s in streams.stream_sources() if s.table == "DecisionLogTable"]
    if not sources:
        return None
    poller = streams.log_stream(stack)
    timed = TimedHandler(sources[0].load(), in_aws)
    poller.handler = timed
    return LogStream(poller, timed)
