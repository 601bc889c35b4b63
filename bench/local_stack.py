"""Part 3: the whole local stack (`governor local`) under load, next to moto's own request rate.

In this process, as `governor local` runs it: moto in server mode, the template's resources, the
SQS poller calling the decide function, and the HTTP gateway in front of every API route, with
the event clock (each event decided as of its own closed_at).

1. Queue path: generated InteractionClosed details for many customers, closed over eight weeks
   (in time order), are sent as an upstream system would, POST /events in chunks of 100; the
   clock runs from the first POST until the decide queue is drained, and every event must then
   be in the decision log.
2. POST /decide: sequential requests, one fresh event each (closed after the replayed weeks),
   each on its own connection as `governor replay` sends them, timed at the client; then a
   few on one kept-alive connection.
3. Baseline: a tight loop of DynamoDB PutItem against the same emulator endpoint, same process,
   right after: what one emulator request costs on this machine now.

Everything shares one interpreter (and its GIL) here, so the figures to quote are the ratios to
the baseline: how many moto requests' worth of wall time one event costs.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import logging
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import workload

# Closed-at times are whole weeks after this Monday, so a run's decisions do not depend on the day it runs.
ANCHOR = datetime(2026, 1, 5, tzinfo=UTC)
CHUNK = 100  # POST /events takes at most 100 details
EVENTS_PER_CUSTOMER = 4  # on average over the replayed weeks
DAYS = 56  # eight weeks of closed interactions
MAX_BACKLOG = 0  # upstream posts the next chunk once no more than this many posted events are unhandled
DECIDE_SPACING = timedelta(minutes=3)  # between the closed_at of successive POST /decide events
KEPT_ALIVE_SHARE = 10  # decide_calls // 10 more requests on one kept-alive connection
STUCK_SECONDS = 5.0  # no record handled for this long: ask the queue whether anything is left
STALL_MS = 20.0  # a kept-alive p50 this much above the fresh-connection p50 is a stall, not work
BASELINE_TABLE = "bench-moto-baseline"

NOTES = (
    "in one process, as `governor local` runs it: moto server (AtomicMotoServer, one DynamoDB request at a time),",
    "  the template's resources, one SQS poller per event source, the HTTP gateway; event clock; function logs",
    "  and EMF metrics to a temp file. moto is the one emulator (infra.local.emulator) with the same speed-ups",
    "  as `governor local` and the tests, answers unchanged; the bench adds none of its own.",
    "queue path: upstream posts the next chunk of 100 once {backlog}",
    "  (moto's SQS walks every message it holds on each send and receive: a deeper queue would time moto).",
    "moto baseline: sequential DynamoDB PutItem of a small item, same endpoint, same process, after the run.",
)


@dataclass(frozen=True)
class LocalStackResult:
    events: int
    customers: int
    days: int
    accepted: int
    posts: int
    queue_seconds: float
    queue_cpu_seconds: float  # this process's CPU time over the queue path (all threads)
    ingest_seconds: float  # inside POST /events, at the client: validate, PutEvents, moto delivering to SQS
    drained: bool
    handled_records: int  # records the poller handed to the decide function
    failed_records: int
    logged: int  # decisions in the log after the queue path
    actions: dict[str, int]
    max_backlog: int
    decide_statuses: dict[str, int]
    decide_ms: tuple[float, ...]  # one fresh connection per request
    decide_actions: dict[str, int]
    kept_alive_ms: tuple[float, ...]  # one kept-alive connection for all
    moto_requests: int
    moto_seconds: float
    total_seconds: float

    @property
    def events_per_second(self) -> float:
        return self.accepted / self.queue_seconds if self.queue_seconds else 0.0

    @property
    def all_decided(self) -> bool:
        return self.drained and self.logged == self.accepted == self.events and self.failed_records == 0

    @property
    def decide_p50(self) -> float:
        return percentile(self.decide_ms, 0.50)

    @property
    def decide_p99(self) -> float:
        return percentile(self.decide_ms, 0.99)

    @property
    def kept_alive_p50(self) -> float:
        return percentile(self.kept_alive_ms, 0.50)

    @property
    def kept_alive_stall(self) -> bool:
        return bool(self.kept_alive_ms) and self.kept_alive_p50 - self.decide_p50 > STALL_MS

    @property
    def decide_ok(self) -> bool:
        return self.decide_statuses == {"200": len(self.decide_ms) + len(self.kept_alive_ms)}

    @property
    def moto_per_second(self) -> float:
        return self.moto_requests / self.moto_seconds if self.moto_seconds else 0.0

    @property
    def moto_mean_ms(self) -> float:
        return 1000 * self.moto_seconds / self.moto_requests if self.moto_requests else 0.0

    @property
    def queue_to_moto(self) -> float:
        """Queue-path events/s ÷ moto requests/s."""
        return self.events_per_second / self.moto_per_second if self.moto_per_second else 0.0

    @property
    def moto_requests_per_event(self) -> float:
        """Wall time of one event through the queue path, in moto requests' worth."""
        return self.moto_per_second / self.events_per_second if self.events_per_second else 0.0

    @property
    def decide_p50_to_moto(self) -> float:
        return self.decide_p50 / self.moto_mean_ms if self.moto_mean_ms else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "customers": self.customers,
            "days": self.days,
            "chunk": CHUNK,
            "max_backlog": self.max_backlog,
            "accepted": self.accepted,
            "posts": self.posts,
            "queue_seconds": self.queue_seconds,
            "queue_events_per_second": self.events_per_second,
            "queue_cpu_seconds": self.queue_cpu_seconds,
            "ingest_seconds_in_post_events": self.ingest_seconds,
            "drained": self.drained,
            "handled_records": self.handled_records,
            "failed_records": self.failed_records,
            "logged_decisions": self.logged,
            "all_decided": self.all_decided,
            "actions": self.actions,
            "decide": {
                "calls": len(self.decide_ms),
                "connection": "one per request",
                "statuses": self.decide_statuses,
                "actions": self.decide_actions,
                "p50_ms": self.decide_p50,
                "p90_ms": percentile(self.decide_ms, 0.90),
                "p99_ms": self.decide_p99,
                "max_ms": max(self.decide_ms, default=0.0),
                "mean_ms": statistics.fmean(self.decide_ms) if self.decide_ms else 0.0,
                "kept_alive": {
                    "calls": len(self.kept_alive_ms),
                    "p50_ms": self.kept_alive_p50,
                    "p99_ms": percentile(self.kept_alive_ms, 0.99),
                    "stall": self.kept_alive_stall,
                },
            },
            "moto_baseline": {
                "operation": "dynamodb.PutItem",
                "requests": self.moto_requests,
                "seconds": self.moto_seconds,
                "requests_per_second": self.moto_per_second,
                "mean_ms": self.moto_mean_ms,
            },
            "ratios": {
                "queue_events_per_second_to_moto_requests_per_second": self.queue_to_moto,
                "moto_requests_worth_of_wall_time_per_event": self.moto_requests_per_event,
                "decide_p50_to_moto_mean_request": self.decide_p50_to_moto,
            },
            "seconds_total": self.total_seconds,
            "notes": list(notes(self.max_backlog)),
        }


def notes(backlog: int = MAX_BACKLOG) -> tuple[str, ...]:
    waits = "the poller has handled every event posted" if backlog <= 0 else f"at most {backlog} are unhandled"
    return tuple(line.format(backlog=waits) for line in NOTES)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest rank: the p99 of 300 values is the 297th smallest."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered) - 1e-9)))
    return ordered[rank - 1]


def period_start(now: datetime, days: int) -> datetime:
    """The latest ANCHOR + whole weeks such that the period (and a day of /decide events) ends two days ago."""
    latest = now - timedelta(days=days + 2)
    return ANCHOR + timedelta(weeks=(latest - ANCHOR) // timedelta(weeks=1))


def make_events(events: int, start: datetime, days: int = DAYS, seed: int = 17) -> tuple[list[dict[str, Any]], int]:
    """Details for `events` interactions of ~events/4 customers (a few much busier than the rest),
    closed at random over `days` from `start`, in time order. Returns them and the customer count."""
    rng = random.Random(seed)
    customers = max(1, events // EVENTS_PER_CUSTOMER)
    zones = [workload.customer_zone(rng) for _ in range(customers)]
    found = []
    for n in range(events):
        if rng.random() < 0.3:  # the busy few
            customer = min(customers - 1, int(rng.paretovariate(1.2)) - 1)
        else:
            customer = rng.randrange(customers)
        closed_at = start + timedelta(seconds=rng.uniform(0, days * 86400))
        cid = f"ls-cust-{customer:06d}"
        found.append((closed_at, workload.detail(rng, f"ls-{n}", cid, closed_at, zones[customer])))
    found.sort(key=lambda pair: pair[0])
    return [d for _, d in found], customers


def decide_events(calls: int, after: datetime, customers: int, seed: int = 23) -> list[dict[str, Any]]:
    """Fresh events for POST /decide, closed one after another after the replayed weeks, same customers."""
    rng = random.Random(seed)
    found = []
    for n in range(calls):
        customer = rng.randrange(customers)
        closed_at = after + (n + 1) * DECIDE_SPACING
        zone = workload.customer_zone(rng)
        found.append(workload.detail(rng, f"ls-decide-{n}", f"ls-cust-{customer:06d}", closed_at, zone))
    return found


class Http:
    """An HTTP/1.1 client of the gateway: one kept-alive connection, or a new one per request."""

    def __init__(self, host: str, port: int, keep_alive: bool = True, timeout: float = 120) -> None:
        self.host, self.port, self.keep_alive, self.timeout = host, port, keep_alive, timeout
        self.connection: http.client.HTTPConnection | None = None

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        headers = {"Content-Type": "application/json"}
        if not self.keep_alive:
            headers["Connection"] = "close"
        try:
            self.connection.request("POST", path, body=json.dumps(body).encode(), headers=headers)
            answer = self.connection.getresponse()
            payload = answer.read()
        finally:
            if not self.keep_alive:
                self.close()
        return answer.status, json.loads(payload or b"null")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def measure(
    events: int = 10_000,
    decide_calls: int = 300,
    baseline_seconds: float = 3.0,
    *,
    days: int = DAYS,
    max_backlog: int = MAX_BACKLOG,
    drain_timeout: float = 900.0,
) -> LocalStackResult:
    from infra.local.stack import running

    started = time.perf_counter()
    start = period_start(datetime.now(UTC), days)
    details, customers = make_events(events, start, days)
    kept_alive_calls = decide_calls // KEPT_ALIVE_SHARE if decide_calls else 0
    deciding = decide_events(decide_calls + kept_alive_calls, start + timedelta(days=days), customers)
    with _restored_environment():
        handlers = _import_functions()
        with (
            tempfile.TemporaryDirectory(prefix="bench-local-stack-") as folder,
            _function_logs_follow_stdout(handlers),
            running(port=0, clock="event", log_to=Path(folder) / "functions.log") as stack,
        ):
            queue = _queue_path(stack, details, max_backlog, drain_timeout)
            logged, actions = _logged_actions(stack)
            statuses: Counter[str] = Counter()
            decide_actions: Counter[str] = Counter()
            fresh = _decide(
                Http(stack.host, stack.port, keep_alive=False), deciding[:decide_calls], statuses, decide_actions
            )
            kept = _decide(Http(stack.host, stack.port), deciding[decide_calls:], statuses, decide_actions)
            moto_requests, moto_seconds = _moto_baseline(baseline_seconds)
    return LocalStackResult(
        events=events,
        customers=customers,
        days=days,
        accepted=queue["accepted"],
        posts=queue["posts"],
        queue_seconds=queue["seconds"],
        queue_cpu_seconds=queue["cpu_seconds"],
        ingest_seconds=queue["ingest_seconds"],
        drained=queue["drained"],
        handled_records=queue["records"],
        failed_records=queue["failed"],
        logged=logged,
        actions=actions,
        max_backlog=max_backlog,
        decide_statuses=dict(statuses),
        decide_ms=tuple(fresh),
        decide_actions=dict(sorted(decide_actions.items())),
        kept_alive_ms=tuple(kept),
        moto_requests=moto_requests,
        moto_seconds=moto_seconds,
        total_seconds=time.perf_counter() - started,
    )


def _queue_path(stack: Any, details: list[dict[str, Any]], max_backlog: int, timeout: float) -> dict[str, Any]:
    pollers = stack.pollers
    deadline = time.monotonic() + timeout

    def handled() -> int:
        return sum(p.records - p.failures for p in pollers)

    def wait_until_handled(target: int) -> None:
        """Watches the poller's own counters (no requests competing with it); asks the queue only when
        they stop moving, in case records failed for good (they are in the dead-letter queue by then)."""
        last, moved = handled(), time.monotonic()
        while last < target and time.monotonic() < deadline:
            time.sleep(0.002)
            now, count = time.monotonic(), handled()
            if count != last:
                last, moved = count, now
            elif now - moved > STUCK_SECONDS:
                if stack.drained():
                    return
                moved = now

    client = Http(stack.host, stack.port)
    accepted = posts = 0
    ingest_seconds = 0.0
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        for first in range(0, len(details), CHUNK):
            wait_until_handled(accepted - max_backlog)
            posted = time.perf_counter()
            status, answer = client.post("/events", {"events": details[first : first + CHUNK]})
            ingest_seconds += time.perf_counter() - posted
            posts += 1
            if status != 202 or answer.get("failed"):
                raise RuntimeError(f"POST /events answered {status}: {str(answer)[:500]}")
            accepted += int(answer["accepted"])
    finally:
        client.close()
    wait_until_handled(accepted)
    drained = stack.wait_drained(timeout=max(1.0, deadline - time.monotonic()), settle=0.02)
    return {
        "accepted": accepted,
        "posts": posts,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
        "ingest_seconds": ingest_seconds,
        "drained": drained,
        "records": sum(p.records for p in pollers),
        "failed": sum(p.failures for p in pollers),
    }


def _logged_actions(stack: Any) -> tuple[int, dict[str, int]]:
    """Decisions in the log and their actions, read by a scan (the harness's inspection, not timed)."""
    import boto3

    dynamodb = boto3.client("dynamodb")
    request: dict[str, Any] = {
        "TableName": stack.resources.names["DecisionLogTable"],
        "ProjectionExpression": "#a",
        "ExpressionAttributeNames": {"#a": "action"},
    }
    actions: Counter[str] = Counter()
    while True:
        page = dynamodb.scan(**request)
        actions.update(item["action"]["S"] for item in page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sum(actions.values()), dict(sorted(actions.items()))


def _decide(client: Http, details: list[dict[str, Any]], statuses: Counter[str], actions: Counter[str]) -> list[float]:
    latencies = []
    try:
        for detail in details:
            started = time.perf_counter()
            status, answer = client.post("/decide", detail)
            latencies.append(1000 * (time.perf_counter() - started))
            statuses[str(status)] += 1
            if status == 200:
                actions[str(answer["action"])] += 1
    finally:
        client.close()
    return latencies


def _moto_baseline(seconds: float, warmup: int = 20) -> tuple[int, float]:
    """Sequential DynamoDB PutItem of a small item against the stack's emulator for about `seconds`."""
    import boto3

    dynamodb = boto3.client("dynamodb")  # AWS_ENDPOINT_URL points at the stack's moto
    dynamodb.create_table(
        TableName=BASELINE_TABLE,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )

    def put(n: int) -> None:
        dynamodb.put_item(
            TableName=BASELINE_TABLE,
            Item={"id": {"S": f"item-{n % 1000:04d}"}, "n": {"N": str(n)}, "kind": {"S": "baseline"}},
        )

    for n in range(warmup):
        put(n)
    requests = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        put(requests)
        requests += 1
        if requests % 10 == 0 and time.perf_counter() >= deadline:
            break
    return requests, time.perf_counter() - started


@contextlib.contextmanager
def _restored_environment() -> Iterator[None]:
    """The stack points the process at its emulator and sets the functions' environment: undone on the way out."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        from shared import wiring

        wiring.reset()


def _import_functions() -> list[logging.StreamHandler[Any]]:
    """Imports every function before the stack starts, with the template's static environment
    (Powertools reads its service name and metrics namespace at import); returns their log handlers."""
    import importlib

    from infra import template
    from infra.local.stack import functions

    variables = template.raw()["Globals"]["Function"]["Environment"]["Variables"]
    os.environ.update({name: value for name, value in variables.items() if isinstance(value, str)})
    handlers: list[logging.StreamHandler[Any]] = []
    for function in functions().values():
        module = importlib.import_module(function.handler.rsplit(".", 1)[0])
        metrics = getattr(module, "metrics", None)
        if metrics is not None and metrics.namespace is None:  # imported earlier without the template's environment
            metrics.namespace = variables.get("POWERTOOLS_METRICS_NAMESPACE")
        handler = getattr(getattr(module, "logger", None), "registered_handler", None)
        if isinstance(handler, logging.StreamHandler) and handler not in handlers:
            handlers.append(handler)
    return handlers


class _Stdout(io.TextIOBase):
    """Whatever sys.stdout is at the time of each write."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@contextlib.contextmanager
def _function_logs_follow_stdout(handlers: list[logging.StreamHandler[Any]]) -> Iterator[None]:
    """The functions' loggers write wherever stdout goes: to the stack's log file while it runs
    (with their EMF metrics, CloudWatch's part in Lambda), and back where they were after."""
    saved = [(handler, handler.stream) for handler in handlers]
    for handler in handlers:
        handler.setStream(_Stdout())
    try:
        yield
    finally:
        for handler, stream in saved:
            handler.setStream(stream)
