"""Part 2: AWS requests per event through the real queue path, for short and long customer histories.

For each population, on a fresh in-process moto built from template.yaml:
1. the customers' past interactions (closed over the previous ~2.5 years) are decided through the
   production Governor (a fresh one per batch of ten, prefetch then decide, as the handler does),
   with the event clock, so each ledger is what the product itself leaves behind, pruning included;
   except that no schedule fires here (history decisions are not announced, and moto never fires
   schedules), so follow-ups held in the history stay pending and the measured events supersede
   many more of them than live traffic would: the lifecycle's requests below are an upper bound;
2. the request counters are reset;
3. the measured events (closed after the history) are put on the EventBridge bus in tens, delivered
   by the template's rule to the decide queue, and fed to functions.decide.app.handler ten at a time
   with Lambda-shaped events, acknowledging like Lambda's event source mapping; the log's stream is
   handed to each of its two functions once a shard's batching window of events was decided
   (bench.shards: the template's MaximumBatchingWindowInSeconds at 1 M events a day over the full
   log's shards), as Lambda's mappings would in production.

Product requests are counted on the clients the product builds through shared.adapters.aws.client(...);
the harness's own calls (PutEvents ingest, ReceiveMessage, DeleteMessageBatch, inspection) are
counted apart and never mixed in.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import shards, workload
from bench.emulator import LOG_STREAM, REGION, Emulator, LogStream, emulator, log_stream

PRESENT = datetime(2026, 6, 1, tzinfo=UTC)  # the history ends here, the measured events start here
HISTORY_DAYS = 913  # ~2.5 years of past interactions: older than any window, so pruning is exercised
MEASURED_DAYS = 100
BATCH = 10
INGEST_WINDOW = 100  # events on the bus before the poller drains the queue
MAX_ROUNDS = 10_000
DYNAMODB_WRITES = ("PutItem", "TransactWriteItems", "UpdateItem", "DeleteItem", "BatchWriteItem")


@dataclass(frozen=True)
class Population:
    history: int  # past interactions per customer
    customers: int
    events_per_customer: int

    @property
    def label(self) -> str:
        return f"{self.history:,} past interaction" + ("" if self.history == 1 else "s")

    @property
    def events(self) -> int:
        return self.customers * self.events_per_customer


def population(history: int, events: int, max_customers: int = 10) -> Population:
    """One measured event per customer for a one-interaction history; else up to ten customers
    sharing the events (10 x 100 for 1,000 events)."""
    if history <= 1:
        return Population(history, events, 1)
    customers = max(1, min(max_customers, events))
    return Population(history, customers, events // customers)


@dataclass
class PopulationResult:
    population: Population
    history_events: int
    history_seconds: float
    history_requests: dict[str, int]
    events: int
    batches: int
    failed_records: int
    redelivered: int  # records received more than once (after a failure)
    product: dict[str, int]  # "service.Operation" -> calls the product made
    attempts: int  # HTTP attempts of those calls (more than calls means retries)
    ms_per_call: dict[str, float]
    put_events_entries: int
    put_events_needed: int  # sum over decide and stream batches of ceil(entries published by the batch / 10)
    published: dict[str, int]  # detail-type -> entries the product published
    bytes_per_event: float
    handler_seconds: float
    product_aws_seconds: float
    harness: dict[str, int]
    ledger_entries_max: int
    ledger_bytes_max: int
    clients_unchanged: bool
    stream_invocations: int = 0  # the stream readers' invocations (0: the log has no stream)
    stream_invocations_by: dict[str, int] = field(default_factory=dict)  # ... by function

    def stream_invocations_of(self, function: str) -> int:
        return self.stream_invocations_by.get(function, 0)

    def calls(self, service: str, *operations: str) -> int:
        """The decide function's calls (and, with no operation named, every call of the service)."""
        found = 0
        for name, n in self.product.items():
            in_service, _, operation = name.partition(".")
            if in_service == service and (not operations or operation in operations):
                found += n
        return found

    @property
    def stream_counts_once_per_batch(self) -> bool:
        """The log count function, per invocation: at most one receipt read and two counting
        transactions (none of either without a stream): part 2's events span MEASURED_DAYS, so a
        count batch of ~87 touches ~60 days' counters and pages, more than one transaction's 100
        items (one in production, where a batch is one day); the publishing function makes neither."""
        invocations = self.stream_invocations_of(shards.COUNTING)
        return (
            self.calls("dynamodb", f"GetItem:{LOG_STREAM}") <= invocations
            and self.calls("dynamodb", f"TransactWriteItems:{LOG_STREAM}") <= 2 * invocations
        )

    def calls_by_any_function(self, service: str, operation: str) -> int:
        """Calls of one operation by the decide function and the log stream function alike."""
        return self.calls(service, operation, f"{operation}:{LOG_STREAM}")

    @property
    def stream_requests(self) -> dict[str, int]:
        """What the log stream function asked of AWS (publishing and counting), when there is one."""
        return {name: n for name, n in self.product.items() if name.endswith(f":{LOG_STREAM}")}

    @property
    def approvals(self) -> int:
        """Approved follow-ups: released at once, or held until their send time (scheduled)."""
        return self.published.get("FollowUpApproved", 0) + self.held

    @property
    def held(self) -> int:
        return self.published.get("FollowUpScheduled", 0)

    @property
    def suppressions(self) -> int:
        return self.published.get("FollowUpSuppressed", 0)

    @property
    def cancellations(self) -> int:
        """Pending follow-ups superseded by a newer interaction, announced with the decision that did it."""
        return self.published.get("FollowUpCancelled", 0)

    @property
    def approved_per_customer(self) -> float:
        """Follow-ups approved over the history and the measured events, per customer (the ledger keeps a year)."""
        in_history = sum(n for name, n in self.history_requests.items() if name == "dynamodb.TransactWriteItems")
        return (in_history + self.approvals) / self.population.customers

    @property
    def other_requests(self) -> dict[str, int]:
        expected = {
            "dynamodb.BatchGetItem",
            # The announcer reads each superseded decision's log entry to publish it as cancelled.
            "dynamodb.GetItem",
            "dynamodb.PutItem",
            "dynamodb.TransactWriteItems",
            "dynamodb.TransactWriteItems:counting",
            "events.PutEvents",
            # One schedule per held follow-up, one deletion per superseded one (issue 11): see LIFECYCLE.
            "scheduler.CreateSchedule",
            "scheduler.DeleteSchedule",
        }
        # The log stream function (when the log has a stream): publishes and counts what was committed.
        # Per stream batch: the count's receipt read (GetItem) and one counting transaction; per
        # record: its announcement (PutEvents, ten entries a request), a held follow-up's schedule, a
        # superseded one's schedule deletion.
        expected |= {
            f"{name}:{LOG_STREAM}"
            for name in (
                "events.PutEvents",
                "dynamodb.TransactWriteItems",
                "dynamodb.GetItem",
                "scheduler.CreateSchedule",
                "scheduler.DeleteSchedule",
            )
        }
        return {name: n for name, n in self.product.items() if name not in expected}

    # Requests driven by the lifecycle (issue 11), one per held or superseded follow-up: how many
    # there are depends on the traffic and the policy (send times, survey delay, re-contacts), not
    # on the length of the history. They are checked exactly against their drivers
    # (`lifecycle_requests_match`) and left out of the history-flat profile.
    LIFECYCLE = ("scheduler.CreateSchedule", "scheduler.DeleteSchedule", "dynamodb.GetItem", "events.PutEvents")

    @property
    def lifecycle_requests_match(self) -> bool:
        """One schedule per held follow-up; per superseded one, a schedule deletion and one read of
        its log entry (to announce it cancelled); each batch publishes its decisions plus the
        cancellations they caused, in ceil(entries / 10) PutEvents (ten entries a request)."""
        return (
            self.calls_by_any_function("scheduler", "CreateSchedule") == self.held
            and self.calls_by_any_function("scheduler", "DeleteSchedule") == self.cancellations
            # with the log's stream, the cancelled entry's image comes with the stream: no read
            and self.calls("dynamodb", "GetItem") <= self.cancellations
            and self.put_events_entries == self.events + self.cancellations
            and self.calls_by_any_function("events", "PutEvents") == self.put_events_needed
        )

    @property
    def request_profile(self) -> dict[str, float]:
        """Requests per event by kind, approvals and suppressions alike counted as one DynamoDB write;
        the lifecycle's requests (LIFECYCLE) apart."""
        kinds: Counter[str] = Counter()
        for name, n in self.product.items():
            if name.removesuffix(f":{LOG_STREAM}") in self.LIFECYCLE:
                continue
            kinds["dynamodb.write" if name.partition(".")[2] in DYNAMODB_WRITES else name] += n
        return {kind: n / self.events for kind, n in sorted(kinds.items())}

    @property
    def dynamodb_per_event(self) -> float:
        return self.calls("dynamodb") / self.events

    @property
    def writes_per_event(self) -> float:
        return self.calls("dynamodb", *DYNAMODB_WRITES) / self.events

    @property
    def batch_gets_per_batch(self) -> float:
        return self.calls("dynamodb", "BatchGetItem") / self.batches

    @property
    def put_events_per_batch(self) -> float:
        return self.calls_by_any_function("events", "PutEvents") / self.batches

    @property
    def put_events_per_event(self) -> float:
        return self.calls_by_any_function("events", "PutEvents") / self.events

    @property
    def requests_per_event(self) -> float:
        return sum(self.product.values()) / self.events

    @property
    def attempts_per_request(self) -> float:
        return self.attempts / max(1, sum(self.product.values()))

    @property
    def ms_per_decision(self) -> float:
        return 1000 * self.handler_seconds / self.events

    @property
    def ms_in_aws_per_decision(self) -> float:
        return 1000 * self.product_aws_seconds / self.events

    @property
    def ms_outside_aws_per_decision(self) -> float:
        return self.ms_per_decision - self.ms_in_aws_per_decision

    def as_json(self) -> dict[str, Any]:
        pop = self.population
        return {
            "label": pop.label,
            "history_per_customer": pop.history,
            "customers": pop.customers,
            "events_per_customer": pop.events_per_customer,
            "history": {
                "events_decided": self.history_events,
                "seconds": self.history_seconds,
                "product_requests": self.history_requests,
            },
            "events": self.events,
            "batches": self.batches,
            "failed_records": self.failed_records,
            "redelivered": self.redelivered,
            "approvals": self.approvals,
            "suppressions": self.suppressions,
            "product_requests": self.product,
            "product_requests_other": self.other_requests,
            "product_http_attempts": self.attempts,
            "put_events_entries": self.put_events_entries,
            "put_events_needed": self.put_events_needed,
            "cancellations": self.cancellations,
            "dynamodb_requests_per_event": self.dynamodb_per_event,
            "dynamodb_write_requests_per_event": self.writes_per_event,
            "batch_get_item_per_batch": self.batch_gets_per_batch,
            "put_events_per_batch": self.put_events_per_batch,
            "put_events_per_event": self.put_events_per_event,
            "product_requests_per_event": self.requests_per_event,
            "product_bytes_per_event": self.bytes_per_event,
            "handler_seconds": self.handler_seconds,
            "ms_per_decision": self.ms_per_decision,
            "ms_in_emulated_aws_calls_per_decision": self.ms_in_aws_per_decision,
            "ms_outside_aws_calls_per_decision": self.ms_outside_aws_per_decision,
            "ms_per_call": self.ms_per_call,
            "harness_requests": self.harness,
            "log_stream_invocations": self.stream_invocations,
            "log_stream_requests": self.stream_requests,
            "ledger_entries_max": self.ledger_entries_max,
            "ledger_item_bytes_max": self.ledger_bytes_max,
            "product_clients_unchanged": self.clients_unchanged,
        }


def measure(
    events: int = 1000, histories: tuple[int, ...] = (1, 1000), seed: int = 11, max_customers: int = 10
) -> list[PopulationResult]:
    """One result per history size, each on its own fresh emulator, same number of measured events
    (a long history: `max_customers` customers share them; requests per event do not depend on how
    many customers there are, only the time to decide their history does)."""
    return [measure_population(population(history, events, max_customers), seed=seed) for history in histories]


def measure_population(pop: Population, seed: int = 11) -> PopulationResult:
    rng = random.Random(f"{seed}-{pop.history}-{pop.customers}")
    customers = [(f"cust-h{pop.history}-{n:05d}", workload.customer_zone(rng)) for n in range(pop.customers)]
    history_start = PRESENT - timedelta(days=HISTORY_DAYS)
    history = _timeline(rng, customers, pop.history, start=history_start, days=HISTORY_DAYS, tag="past")
    measured = _timeline(rng, customers, pop.events_per_customer, start=PRESENT, days=MEASURED_DAYS, tag="now")
    with emulator() as bench, _quiet_product():
        stream = log_stream(bench.stack, lambda: bench.product.seconds)
        started = time.perf_counter()
        _decide_history(history)
        if stream is not None:
            stream.skip()  # the history is not announced (as before the stream)
        history_seconds = time.perf_counter() - started
        history_requests = bench.product.by_operation()
        bench.product.clear()
        bench.harness.clear()
        run = _replay(bench, measured, stream)
        counted = bench.product
        ledgers = _ledger_sizes(bench, [cid for cid, _ in customers])
        return PopulationResult(
            population=pop,
            history_events=len(history),
            history_seconds=history_seconds,
            history_requests=history_requests,
            events=len(measured),
            batches=run["batches"],
            failed_records=run["failed"],
            redelivered=run["redelivered"],
            product=counted.by_operation(),
            attempts=sum(counted.attempts.values()),
            ms_per_call=counted.ms_per_call(),
            put_events_entries=counted.entries[("events", "PutEvents")],
            put_events_needed=run["put_events_needed"],
            published=dict(counted.detail_types),
            bytes_per_event=(sum(counted.bytes_sent.values()) + sum(counted.bytes_received.values())) / len(measured),
            handler_seconds=run["seconds"],
            product_aws_seconds=counted.seconds,
            harness=bench.harness.by_operation(),
            ledger_entries_max=max(entries for entries, _ in ledgers),
            ledger_bytes_max=max(size for _, size in ledgers),
            clients_unchanged=bench.product_clients_unchanged(),
            stream_invocations=run.get("stream_invocations", 0),
            stream_invocations_by={r.poller.source.function: r.timed.calls.count for r in stream.readers}
            if stream is not None
            else {},
        )


def _timeline(
    rng: random.Random,
    customers: list[tuple[str, str | None]],
    per_customer: int,
    *,
    start: datetime,
    days: int,
    tag: str,
) -> list[dict[str, Any]]:
    """`per_customer` interactions for each customer closed at random over `days` from `start`, in time order."""
    found = []
    for cid, zone in customers:
        for n in range(per_customer):
            closed_at = start + timedelta(seconds=rng.uniform(0, days * 86400))
            found.append((closed_at, workload.detail(rng, f"{tag}-{cid}-{n}", cid, closed_at, zone)))
    found.sort(key=lambda pair: pair[0])
    return [d for _, d in found]


def _decide_history(details: list[dict[str, Any]]) -> None:
    """The past, decided as the handler decides a batch: a fresh Governor, one prefetch, one decide each."""
    from shared import wiring
    from shared.domain.events import InteractionClosed

    events = [InteractionClosed.model_validate(d) for d in details]
    for start in range(0, len(events), BATCH):
        batch = events[start : start + BATCH]
        governor = wiring.governor()
        governor.prefetch(e.customer_id for e in batch)
        for event in batch:
            governor.decide(event)


def _replay(
    bench: Emulator, details: list[dict[str, Any]], stream: LogStream | None = None, window: int = INGEST_WINDOW
) -> dict[str, Any]:
    """Upstream puts `window` events on the bus (PutEvents in tens), the poller drains the queue, and
    so on: the queue holds what a live stream would, not the whole replay at once (moto's SQS scans
    every message it holds on each send, so a queue of a thousand would time moto, not the product)."""
    run: Counter[str] = Counter()
    seconds = 0.0
    for start in range(0, len(details), window):
        _put_on_bus(bench, details[start : start + window])
        seconds += _drain(bench, run, stream, windowed=True)
    if stream is not None:
        seconds += _drain_stream(bench, run, stream, flush=True)
    run["redelivered"] = run["records"] - len(details)
    return {**run, "seconds": seconds}


def _put_on_bus(bench: Emulator, details: list[dict[str, Any]]) -> None:
    """What an upstream help desk does: InteractionClosed events on the governor's bus, PutEvents in tens."""
    bus = bench.stack.names["GovernorBus"]
    for start in range(0, len(details), BATCH):
        entries = [
            {
                "EventBusName": bus,
                "Source": "bench.helpdesk",
                "DetailType": "InteractionClosed",
                "Detail": json.dumps(d),
            }
            for d in details[start : start + BATCH]
        ]
        answer = bench.events.put_events(Entries=entries)
        if answer.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused {answer['FailedEntryCount']} events")


def _drain_stream(
    bench: Emulator, run: Counter[str], stream: LogStream, decided: int | None = None, flush: bool = False
) -> float:
    """The log stream's readers on what was committed since their last drains: those whose
    window `decided` more events fill (LogStream.decided), what waits at the end (`flush`), or all
    of them (neither), their requests labelled LOG_STREAM; returns their seconds."""
    published = {"entries": bench.product.entries[("events", "PutEvents")]}

    def tally() -> None:  # PutEvents takes ten entries a request: each invocation needs ceil(its entries / 10)
        entries = bench.product.entries[("events", "PutEvents")]
        run["put_events_needed"] += -(-(entries - published["entries"]) // 10)
        published["entries"] = entries

    for reader in stream.readers:
        reader.timed.after = tally
    bench.product.label = LOG_STREAM
    try:
        if flush:
            took = stream.flush()
        elif decided is not None:
            took, _ = stream.decided(decided)
        else:
            took = stream.drain()
    finally:
        bench.product.label = None
    run["stream_invocations"] += took.count
    return took.seconds


def _drain(bench: Emulator, run: Counter[str], stream: LogStream | None = None, windowed: bool = False) -> float:
    """Lambda's SQS event source: receive up to ten, invoke the handler, delete what succeeded, make
    failed records visible again at once; then, when the log has a stream, its readers on what was
    committed meanwhile: each once its shard's window is full (`windowed`, bench.shards), else
    all of them after every batch. Returns the seconds spent in the handlers."""
    from functions.decide.app import handler
    from infra.lambda_runtime import LambdaContext, acknowledge, receive_batch, sqs_event

    url, arn = bench.stack.urls["DecideQueue"], bench.stack.arns["DecideQueue"]
    seconds = 0.0
    for _ in range(MAX_ROUNDS):
        messages = receive_batch(bench.sqs, url)
        if not messages:
            break
        entries_before = bench.product.entries[("events", "PutEvents")]
        started = time.perf_counter()
        response = handler(sqs_event(messages, arn, REGION), LambdaContext("decide"))
        seconds += time.perf_counter() - started
        # PutEvents takes ten entries a request: what this batch published needs ceil(entries / 10).
        run["put_events_needed"] += -(-(bench.product.entries[("events", "PutEvents")] - entries_before) // 10)
        if stream is not None:
            seconds += _drain_stream(bench, run, stream, len(messages) if windowed else None)
        run["batches"] += 1
        run["records"] += len(messages)
        acknowledge(bench.sqs, url, messages, response)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        run["failed"] += len(failed)
        for message in messages:
            if message["MessageId"] in failed:
                bench.sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
    return seconds


def _ledger_sizes(bench: Emulator, customer_ids: list[str]) -> list[tuple[int, int]]:
    """(follow-ups kept, item size as DynamoDB JSON) of each customer's ledger after the run, read by the harness."""
    from shared.adapters import ledger

    sizes = []
    table = bench.stack.names["LedgerTable"]
    for start in range(0, len(customer_ids), 100):
        keys = [ledger.key(cid) for cid in customer_ids[start : start + 100]]
        answer = bench.dynamodb.batch_get_item(RequestItems={table: {"Keys": keys, "ConsistentRead": True}})
        for item in answer["Responses"].get(table, []):
            entries = len(item.get("followups", {}).get("L", []))
            sizes.append((entries, len(json.dumps(item, separators=(",", ":"), default=_base64))))
    return sizes or [(0, 0)]


def _base64(value: Any) -> str:
    """A binary attribute as DynamoDB JSON carries it."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(f"not JSON: {type(value).__name__}")


@contextlib.contextmanager
def _quiet_product() -> Iterator[None]:
    """The decide function logs a line per decision and prints its metrics (EMF) per invocation, as
    in Lambda; both are produced as usual but written to a sink instead of this terminal."""
    streams: list[tuple[logging.StreamHandler[Any], Any]] = []
    try:
        from functions.decide import app

        handler = app.logger.registered_handler
        if isinstance(handler, logging.StreamHandler):
            # Not setStream: it flushes the old stream, which may be a test's captured stdout,
            # closed since the logger was built (a ValueError in a later bench run).
            streams.append((handler, handler.stream))
            handler.stream = _Discard()
        with contextlib.redirect_stdout(_Discard()):
            yield
    finally:
        for handler, stream in streams:
            handler.stream = stream


class _Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)
