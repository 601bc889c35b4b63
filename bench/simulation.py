"""Part 4: what POST /policy/simulate does with a busy decision log: read 30 days of logged
decisions back (shared.usecases.simulation.logged_since, the day index, never a scan) and replay them
through the engine under the current and a candidate policy (shared.usecases.simulation.simulate).

1. Events for many customers, closed over 30 days, are decided in time order by the engine with
   the default policy and the customers' ledgers kept in memory (the event clock: each decided
   as of its closed_at + 30 s), so the log holds what the product would have logged. The lifecycle
   runs as the product's does: a decision supersedes the customer's pending follow-ups (freeing
   their slots, approval or not), and every held follow-up's schedule fires at its send time, before
   anything later is decided, re-checking and releasing or cancelling it (engine.recheck).
2. The log items (shared.adapters.decision_log.to_item) are written with BatchWriteItem into moto
   (in process) with the template's DecisionLogTable, then read back with logged_since; moto
   answers each Query by walking every item of the table (no index structure), so the read is
   timed on a smaller log when asked (--simulation-read-events) and said so.
3. The product's own work per logged item, parsing the item (decision_log.from_item) and
   rebuilding the event (Replayable.of), is timed in memory on all the items: what the read
   costs the function whatever DynamoDB's speed.
4. simulate(current, candidate) on all the events, in memory, timed.
"""

from __future__ import annotations

import gc
import heapq
import json
import random
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import workload
from shared.adapters import decision_log
from shared.adapters.clock import EventClock
from shared.domain import engine
from shared.domain.contacts import ContactLedger
from shared.domain.decision import CancelReason, Decision, State
from shared.domain.events import InteractionClosed
from shared.domain.policy import DEFAULT_POLICY_FILE, Policy, default_policy
from shared.usecases.simulation import Replayable, logged_since, simulate

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday: the logged month starts here
DAYS = 30
EVENTS_PER_CUSTOMER = 3  # on average over the month
BATCH_WRITE = 25  # BatchWriteItem's limit
RETENTION = timedelta(days=400)  # the template's DecisionRetentionDays
MEMORY_SAMPLE = 2_000  # replayable events built under tracemalloc to measure what they hold
READ_EVENTS = 1_000  # log items written into moto and read back (moto walks the whole table on each Query)
LAMBDA_TIMEOUT_SECONDS = 300  # template.yaml: PolicyApiFunction Timeout
API_GATEWAY_TIMEOUT_SECONDS = 29  # REST API integration timeout (default quota) in front of the function
PAGE_BYTES = 1_000_000  # a Query reads at most 1 MB of items per page
PAGE_ALLOWANCE_SECONDS = 0.1  # per Query page, DynamoDB's side, for the verdicts: generous for a <= 1 MB page
CANDIDATE = {
    "caps": {"survey": [{"max": 1, "days": 60}, {"max": 4, "days": 365}], "callback": [{"max": 1, "days": 7}]},
    "survey_sample_rate": 0.5,
}
CANDIDATE_LABEL = "survey cap 1 per 60 days (was 30), survey sample rate 0.5 (was 1.0)"

NOTES = tuple(
    line.format(allowance=1000 * PAGE_ALLOWANCE_SECONDS, sample=MEMORY_SAMPLE)
    for line in (
        "log: decisions of the default policy, made by the engine in time order with in-memory ledgers (event clock);",
        "  written with BatchWriteItem into in-process moto (template's DecisionLogTable, bench.emulator speed-ups).",
        "read: simulation.logged_since over the days (16 day-shard Queries a day on the day index, projection",
        "  doc); moto walks every item of the table on each Query (no index structure), so its read time grows with",
        "  the square of the log: timed on a smaller log spanning the same days. Pages at full size: from item sizes.",
        "parse: decision_log.from_item + Replayable.of per item, in memory: the function's own share of the read;",
        "  memory: what the replayable events keep (tracemalloc on {sample:,}, scaled): the function holds them all.",
        "simulate: simulation.simulate in memory; two engine decisions per event (current and candidate).",
        "verdicts: the function's own work (parse + simulate, on this machine) plus {allowance:.0f} ms of DynamoDB",
        "  per Query page of the full log.",
    )
)


def candidate_policy() -> Policy:
    document = json.loads(DEFAULT_POLICY_FILE.read_text())
    return Policy.model_validate({**document, **CANDIDATE, "version": 1})


@dataclass
class SimulationResult:
    events: int
    customers: int
    days: int
    logged_actions: dict[str, int]
    generate_seconds: float  # engine decisions + log items for the whole log (setup, not timed as the product)
    doc_bytes_mean: float  # the doc attribute, what the Query's projection returns
    item_bytes_mean: float  # the whole item, what a Query page's 1 MB counts
    read_events: int  # log items written into moto and read back
    write_seconds: float
    write_requests: int
    read_seconds: float
    read_queries: int
    full_queries: int  # Query pages logged_since needs for all the events (from item sizes per day shard)
    parse_seconds: float  # from_item + Replayable.of for all the items, in memory
    replayables_mb: float  # memory the replayable events keep, all of them (what the function holds)
    simulate_seconds: float
    report: dict[str, Any]
    engine_per_second: float | None = None  # pure engine decisions/s measured earlier in the same run
    candidate: str = CANDIDATE_LABEL
    notes: tuple[str, ...] = field(default=NOTES)

    @property
    def read_full_size(self) -> bool:
        return self.read_events == self.events

    @property
    def read_per_second(self) -> float:
        return self.read_events / self.read_seconds if self.read_seconds else 0.0

    @property
    def ms_per_query(self) -> float:
        return 1000 * self.read_seconds / self.read_queries if self.read_queries else 0.0

    @property
    def parse_per_second(self) -> float:
        return self.events / self.parse_seconds if self.parse_seconds else 0.0

    @property
    def simulate_per_second(self) -> float:
        return self.events / self.simulate_seconds if self.simulate_seconds else 0.0

    @property
    def simulate_decisions_per_second(self) -> float:
        return 2 * self.simulate_per_second

    @property
    def to_engine(self) -> float | None:
        """simulate's engine decisions/s ÷ the pure engine's decisions/s."""
        if not self.engine_per_second:
            return None
        return self.simulate_decisions_per_second / self.engine_per_second

    @property
    def function_seconds(self) -> float:
        """The function's own work for all the events: parse what the Queries return, then simulate."""
        return self.parse_seconds + self.simulate_seconds

    def seconds_per_query_left(self, budget: float) -> float:
        """How long each Query page may take for the whole request to fit in `budget` seconds."""
        return max(0.0, budget - self.function_seconds) / self.full_queries if self.full_queries else 0.0

    def fits_in(self, budget: float) -> bool:
        """The function's own work plus PAGE_ALLOWANCE_SECONDS per Query page of the full log fit in `budget`."""
        return self.function_seconds + self.full_queries * PAGE_ALLOWANCE_SECONDS <= budget

    @property
    def replay_matches_log(self) -> bool:
        """The current policy, replayed, decides what the log holds (the log began with empty ledgers too)."""
        return bool(self.report["current"]["by_action"] == self.logged_actions)

    @property
    def counts_add_up(self) -> bool:
        return all(sum(self.report[side]["by_action"].values()) == self.events for side in ("current", "candidate"))

    @property
    def fits(self) -> bool:
        return self.fits_in(LAMBDA_TIMEOUT_SECONDS)

    def as_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "customers": self.customers,
            "days": self.days,
            "logged_actions": self.logged_actions,
            "generate_seconds": self.generate_seconds,
            "doc_bytes_mean": self.doc_bytes_mean,
            "item_bytes_mean": self.item_bytes_mean,
            "read": {
                "events_written_and_read": self.read_events,
                "full_size": self.read_full_size,
                "write_seconds": self.write_seconds,
                "batch_write_requests": self.write_requests,
                "seconds": self.read_seconds,
                "queries": self.read_queries,
                "moto_ms_per_query": self.ms_per_query,
                "events_per_second": self.read_per_second,
                "query_pages_for_all_events": self.full_queries,
            },
            "parse": {
                "seconds": self.parse_seconds,
                "events_per_second": self.parse_per_second,
                "replayables_mb": self.replayables_mb,
            },
            "simulate": {
                "candidate": self.candidate,
                "seconds": self.simulate_seconds,
                "events_per_second": self.simulate_per_second,
                "engine_decisions_per_second": self.simulate_decisions_per_second,
                "pure_engine_decisions_per_second": self.engine_per_second,
                "ratio_to_pure_engine": self.to_engine,
                "current": self.report["current"],
                "candidate_policy": self.report["candidate"],
                "difference": self.report["difference"],
                "changed_events": self.report["changed_events"],
                "counts_add_up": self.counts_add_up,
                "current_replay_matches_log": self.replay_matches_log,
            },
            "function_seconds_parse_plus_simulate": self.function_seconds,
            "query_page_allowance_seconds": PAGE_ALLOWANCE_SECONDS,
            "lambda_timeout_seconds": LAMBDA_TIMEOUT_SECONDS,
            "seconds_per_query_page_left_in_lambda_timeout": self.seconds_per_query_left(LAMBDA_TIMEOUT_SECONDS),
            "fits_lambda_timeout": self.fits,
            "api_gateway_timeout_seconds": API_GATEWAY_TIMEOUT_SECONDS,
            "seconds_per_query_page_left_in_api_gateway_timeout": self.seconds_per_query_left(
                API_GATEWAY_TIMEOUT_SECONDS
            ),
            "fits_api_gateway_timeout": self.fits_in(API_GATEWAY_TIMEOUT_SECONDS),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Log:
    items: list[dict[str, Any]]  # decision-log items, in decision order
    actions: dict[str, int]
    customers: int
    end: datetime  # the last decision's time


def make_log(events: int, days: int = DAYS, seed: int = 29) -> Log:
    """The log items the default policy leaves for `events` interactions of ~events/3 customers over `days`."""
    rng = random.Random(seed)
    customers = max(1, events // EVENTS_PER_CUSTOMER)
    zones = [workload.customer_zone(rng) for _ in range(customers)]
    found = []
    for n in range(events):
        customer = rng.randrange(customers)
        closed_at = START + timedelta(seconds=rng.uniform(0, days * 86400 - 3600))
        cid = f"sim-cust-{customer:06d}"
        found.append((closed_at, workload.detail(rng, f"sim-{n}", cid, closed_at, zones[customer])))
    found.sort(key=lambda pair: pair[0])
    policy, clock = default_policy(), EventClock()
    ledgers: dict[str, ContactLedger] = {}
    items: list[dict[str, Any]] = []
    logged: dict[str, tuple[int, Decision]] = {}  # pending decision_id -> its item's index, and it
    held: list[tuple[datetime, str, Decision]] = []  # pending follow-ups by send time: their schedules
    actions: Counter[str] = Counter()
    end = START

    def settle(decision_id: str, state: State, reason: CancelReason | None, at: datetime) -> None:
        """The log entry's lifecycle attributes updated in place, as the product does (not `doc`)."""
        index, decision = logged.pop(decision_id)
        items[index] = {**items[index], **decision_log.state_attributes(decision.with_state(state, reason, at))}

    with _collector_paused():  # setup, not the product: no collections over the growing log
        for _, detail in found:
            event = InteractionClosed.model_validate(detail)
            now = clock.now(event)
            # The product's lifecycle, as the local stack runs it under the event clock: every
            # schedule due by now fires first, in time order, and does what
            # shared.usecases.release.ReleaseUseCase does (engine.recheck as of the schedule's time,
            # then ContactLedger.released / cancelled).
            while held and held[0][0] <= now:
                due, decision_id, pending = heapq.heappop(held)
                if decision_id not in logged:
                    continue  # superseded at decision time: its schedule finds it settled, changes nothing
                ledger = ledgers[pending.customer_id]
                state, reason, _ = engine.recheck(ledger.find(decision_id), pending, ledger, policy, due)
                settled = ledger.released if state is State.RELEASED else ledger.cancelled
                ledgers[pending.customer_id] = settled(decision_id)
                settle(decision_id, state, reason, due)
            ledger = ledgers.get(event.customer_id) or ContactLedger(event.customer_id)
            decision = engine.decide(event, ledger, policy, now)
            # As shared.usecases.decide.Governor commits: an approval takes a slot, and a decision
            # that supersedes pending follow-ups (approval or not) frees theirs and cancels them.
            if decision.approved or decision.supersedes:
                ledgers[event.customer_id] = ledger.after(decision, policy.ledger_retention, now)
            for superseded in decision.supersedes:
                settle(superseded, State.CANCELLED, CancelReason.SUPERSEDED_BY_NEWER_INTERACTION, now)
            items.append(decision_log.to_item(decision, RETENTION))
            if decision.state is State.PENDING and decision.send_at is not None:
                logged[decision.decision_id] = (len(items) - 1, decision)
                heapq.heappush(held, (decision.send_at, decision.decision_id, decision))
            actions[str(decision.action)] += 1
            end = decision.decided_at
    # Follow-ups due after the last decision stay pending: their schedules have not fired yet.
    return Log(items, dict(sorted(actions.items())), customers, end)


def measure(
    events: int = 100_000,
    read_events: int = READ_EVENTS,
    days: int = DAYS,
    engine_per_second: float | None = None,
) -> SimulationResult:
    from bench.emulator import emulator

    read_events = max(1, min(events, read_events))
    started = time.perf_counter()
    log = make_log(events, days)
    generate_seconds = time.perf_counter() - started
    items, now = log.items, log.end + timedelta(minutes=1)
    log_actions, log_customers = log.actions, log.customers

    # Every k-th item, so a smaller log still spans all the days.
    subset = [items[i * events // read_events] for i in range(read_events)]
    with emulator() as bench:
        table = bench.stack.names["DecisionLogTable"]
        write_seconds, write_requests = _batch_write(bench.dynamodb, table, subset)
        counted = _QueryCounter(bench.dynamodb)
        with _only_new_objects_collected():
            read_started = time.perf_counter()
            found = sum(1 for _ in logged_since(table, days, now, client=counted))
            read_seconds = time.perf_counter() - read_started
    if found != read_events:
        raise RuntimeError(f"logged_since found {found} of the {read_events} logged events")
    del subset

    replayables_mb = (
        _replayables_mb(items[: min(len(items), MEMORY_SAMPLE)]) * len(items) / min(len(items), MEMORY_SAMPLE)
    )
    with _only_new_objects_collected():
        parse_started = time.perf_counter()
        replayables = [Replayable.of(decision_log.from_item(item)) for item in items]
        parse_seconds = time.perf_counter() - parse_started
    full_queries = _query_pages(items, days, now)
    doc_bytes = sum(len(item["doc"]["S"]) for item in items) / len(items)
    item_bytes = sum(_item_size(item) for item in items) / len(items)
    del items, log

    with _only_new_objects_collected():
        simulate_started = time.perf_counter()
        report = simulate(replayables, default_policy(), candidate_policy())
        simulate_seconds = time.perf_counter() - simulate_started
    return SimulationResult(
        events=events,
        customers=log_customers,
        days=days,
        logged_actions=log_actions,
        generate_seconds=generate_seconds,
        doc_bytes_mean=doc_bytes,
        item_bytes_mean=item_bytes,
        read_events=read_events,
        write_seconds=write_seconds,
        write_requests=write_requests,
        read_seconds=read_seconds,
        read_queries=counted.queries,
        full_queries=full_queries,
        parse_seconds=parse_seconds,
        replayables_mb=replayables_mb,
        simulate_seconds=simulate_seconds,
        report=report,
        engine_per_second=engine_per_second,
    )


@contextmanager
def _collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _only_new_objects_collected() -> Iterator[None]:
    """The collector runs as in the function, over what the timed block builds; what the harness
    already holds (the whole log as items) is frozen, as the function would not hold it."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _replayables_mb(items: list[dict[str, Any]]) -> float:
    """Memory the replayable events of these items keep, in MB (traced allocations still alive)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [Replayable.of(decision_log.from_item(item)) for item in items]
        gc.collect()
        size = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del kept
    return size / 1e6


def _item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size, near enough: attribute names plus their values' text."""
    return sum(len(name) + len(next(iter(value.values()))) for name, value in item.items())


def _query_pages(items: list[dict[str, Any]], days: int, now: datetime) -> int:
    """Query pages logged_since reads for these items: one per day shard, more where a shard holds over 1 MB."""
    shard_bytes: Counter[str] = Counter()
    for item in items:
        shard_bytes[item["day_shard"]["S"]] += _item_size(item)
    dates = (now.date() - (now - timedelta(days=days)).date()).days + 1
    extra = sum(max(0, -(-size // PAGE_BYTES) - 1) for size in shard_bytes.values())
    return dates * decision_log.DAY_SHARDS + extra


def _batch_write(dynamodb: Any, table: str, items: list[dict[str, Any]]) -> tuple[float, int]:
    requests = 0
    started = time.perf_counter()
    for first in range(0, len(items), BATCH_WRITE):
        pending: dict[str, Any] = {table: [{"PutRequest": {"Item": i}} for i in items[first : first + BATCH_WRITE]]}
        while pending:
            requests += 1
            pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return time.perf_counter() - started, requests


class _QueryCounter:
    """The harness's DynamoDB client, counting the Queries logged_since makes."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.queries = 0

    def query(self, **request: Any) -> Any:
        self.queries += 1
        return self.client.query(**request)
