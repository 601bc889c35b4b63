"""Part 4: what POST /policy/simulate and a simulation job partition do with a busy decision log:
read the window's logged decisions and the customers' history back (shared.adapters.log_replay,
indexes only), and replay them through the engine under the current and a candidate policy
(shared.usecases.simulation.run_partitions), against TODAY'S code path kept here as the baseline.

1. Events for many customers, closed over 30 days, are decided in time order by the engine with
   the default policy and the customers' ledgers kept in memory (the event clock: each decided
   as of its closed_at + 30 s), so the log holds what the product would have logged. The lifecycle
   runs as the product's does: a decision supersedes the customer's pending follow-ups (freeing
   their slots, approval or not), and every held follow-up's schedule fires at its send time, before
   anything later is decided, re-checking and releasing or cancelling it (engine.recheck).
2. The log items (shared.adapters.decision_log.to_item) are written with BatchWriteItem into moto
   (in process) with the template's DecisionLogTable, with the day pages the log stream function
   would have written for them in the StatsTable (`write_log`), then read back with LogReader
   (each day's pages, the entries by key with BatchGetItem, then one by-customer Query per
   customer); moto answers each Query by walking every item of the table (no index structure),
   so the read is timed on a smaller log when asked (--simulation-read-events) and said so.
3. The function's own work on all the items, in memory (ItemsReader answers the same reads from
   memory, the day pages parsed as DayPages parses them): pages + decode + group by customer +
   replay (run_partitions over every partition), timed. `parse` is the decode alone, timed apart.
4. The baseline. `simulation_100k_ratio_vs_baseline` = this code's function work ÷ today's, in CPU
   time. Today's work (the code and the engine before issue 12) is TODAY_PER_VALIDATION times the
   CPU time of validating the same events with the contract's model in this run: a fixed ratio
   measured on today's code, carried to this run's machine by a rate issue 12 does not change, so
   the faster engine (goal 2) and this simulation's own cuts both count. Today's simulation code is
   also kept verbatim below (from_item + Replayable.of per item, then simulate() over all events in
   one heap) and run on the same items: `ratio_vs_todays_code_on_this_engine`, the stricter figure,
   is what the simulation costs against it on the engine of this run; both answers must agree.
"""

from __future__ import annotations

import gc
import heapq
import json
import random
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import cost, simulation_scale, workload
from shared.adapters import decision_log, log_entries
from shared.adapters.clock import EventClock
from shared.adapters.log_replay import ItemsReader, LogReader, day_reads, decode, stream_pages
from shared.domain import engine
from shared.domain.contacts import ContactLedger
from shared.domain.decision import CancelReason, Decision, State
from shared.domain.events import InteractionClosed
from shared.domain.outcomes import FollowUpOutcome
from shared.domain.policy import DEFAULT_POLICY_FILE, Policy, default_policy
from shared.usecases import simulation

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday: the logged month starts here
DAYS = 30
EVENTS_PER_CUSTOMER = 3  # on average over the month
BATCH_WRITE = 25  # BatchWriteItem's limit
RETENTION = timedelta(days=400)  # the template's DecisionRetentionDays
MEMORY_SAMPLE = 2_000  # logged decisions decoded under tracemalloc to measure what they hold
READ_EVENTS = 1_000  # log items written into moto and read back (moto walks the whole table on each Query)
LAMBDA_TIMEOUT_SECONDS = 300  # template.yaml: PolicyApiFunction Timeout
API_GATEWAY_TIMEOUT_SECONDS = 29  # REST API integration timeout (default quota) in front of the function
PAGE_BYTES = 1_000_000  # a Query reads at most 1 MB of items per page
PAGE_ALLOWANCE_SECONDS = 0.1  # per Query page, DynamoDB's side, for the verdicts: generous for a <= 1 MB page
RATIO_TARGET = 0.5  # issue 12 goal 4: <= 0.5x today's function work
VALIDATION_REPEATS = 3
SCALE_OUT_WORKERS = 2  # the machine's cores: partitions side by side in a process pool
# Today's function work (parse + simulate, the code AND the engine before issue 12, commit abe9e9d)
# per unit of the time it takes to validate the same events with InteractionClosed, which issue 12
# does not change. Measured on this 2-CPU machine, 20,000 events, best of 3-5 interleaved repeats:
# 29.7, 34.0, 36.7 in wall time at load 3-5, 40.2, 40.5, 44.7 in CPU time at load 8-17 (contention
# slows the replay more than the short validation). 34 is the lower-load value, and a smaller
# factor makes a stricter ratio. Times this run's validation CPU time, it gives today's work on this
# run's machine, so the ratio credits the faster engine (goal 2) and this simulation's own cuts alike.
# (A frozen copy of the old engine would be the alternative; the old simulation code IS kept below,
# and the ratio to it on this run's engine is reported too: ratio_vs_todays_code_on_this_engine.)
TODAY_PER_VALIDATION = 34.0
TODAY_SPREAD = "29.7-44.7"
CANDIDATE = {
    "caps": {"survey": [{"max": 1, "days": 60}, {"max": 4, "days": 365}], "callback": [{"max": 1, "days": 7}]},
    "survey_sample_rate": 0.5,
}
CANDIDATE_LABEL = "survey cap 1 per 60 days (was 30), survey sample rate 0.5 (was 1.0)"

NOTES = tuple(
    line.format(
        allowance=1000 * PAGE_ALLOWANCE_SECONDS, sample=MEMORY_SAMPLE, k=TODAY_PER_VALIDATION, spread=TODAY_SPREAD
    )
    for line in (
        "log: decisions of the default policy, made by the engine in time order with in-memory ledgers (event clock);",
        "  written with BatchWriteItem into in-process moto (template's DecisionLogTable, bench.emulator speed-ups).",
        "read: LogReader, each day's pages (stats table; the stream's 5 s batches), the listed entries by key",
        "  (BatchGetItem, 100 a request), then one by-customer Query per customer (history, outcomes, opt-outs);",
        "  requests = Queries + BatchGetItems. moto walks every item of the table on each Query (no index",
        "  structure), so its read time grows with the square of the log: timed on a smaller log of the same days.",
        "function work: run_partitions over every partition, in memory (ItemsReader answers the same reads):",
        "  day pages parsed + decode + group by customer + replay both policies; parse = the decode alone.",
        "  memory: what the decoded decisions keep (tracemalloc on {sample:,}, scaled).",
        "baseline: today's function work (code and engine before issue 12) = {k} x the CPU time of validating the",
        "  same events with the contract's model in this run (measured on today's code: {spread}); also today's",
        "  simulation code, kept verbatim in bench/simulation.py, run on the same items on this run's engine.",
        "verdicts: the function's own work (on this machine) plus {allowance:.0f} ms of DynamoDB per read request of",
        "  the full log (a Query page or a BatchGetItem; the reads' threads not counted).",
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
    doc_bytes_mean: float  # the doc attribute
    item_bytes_mean: float  # the whole item, what a Query page's 1 MB counts
    read_events: int  # log items written into moto and read back
    write_seconds: float
    write_requests: int
    read_seconds: float
    read_queries: int  # read requests: Queries (day pages, histories) and BatchGetItems (entries)
    full_queries: int  # read requests for all the events (from the pages' sizes, 100 entries a BatchGetItem)
    parse_seconds: float  # decode of all the items, in memory (part of function_seconds)
    replayables_mb: float  # memory the decoded decisions keep, all of them
    function_seconds: float  # run_partitions over every partition, in memory: decode + group + replay
    baseline_parse_seconds: float  # today's from_item + Replayable.of, all the items
    baseline_simulate_seconds: float  # today's simulate(), all the events
    function_cpu: float  # CPU seconds of function_seconds
    baseline_cpu: float  # CPU seconds of today's code path (parse + simulate) on this engine
    validation_cpu: float  # CPU seconds to validate the same events with the contract's model (best of 3)
    report: dict[str, Any]
    baseline_report: dict[str, Any]
    engine_per_second: float | None = None  # pure engine decisions/s measured earlier in the same run
    scale: simulation_scale.ScaleOut | None = None  # the job's partitions alone and in a 2-process pool
    read_requests: dict[str, int] = field(default_factory=dict)  # the smaller log's, by kind
    full_requests: dict[str, int] = field(default_factory=dict)  # all the events', by kind
    candidate: str = CANDIDATE_LABEL
    notes: tuple[str, ...] = field(default=NOTES)

    @property
    def simulate_seconds(self) -> float:
        """The replay's share of the function work (everything but the decode)."""
        return max(0.0, self.function_seconds - self.parse_seconds)

    @property
    def baseline_seconds(self) -> float:
        return self.baseline_parse_seconds + self.baseline_simulate_seconds

    @property
    def today_seconds(self) -> float:
        """Today's function work (the code and engine before issue 12) for these events on this run's
        machine: TODAY_PER_VALIDATION times the CPU time of validating the same events."""
        return TODAY_PER_VALIDATION * self.validation_cpu

    @property
    def ratio_vs_baseline(self) -> float:
        """simulation_100k_ratio_vs_baseline: this code's function work (CPU) ÷ today's."""
        return self.function_cpu / self.today_seconds if self.today_seconds else 0.0

    @property
    def ratio_vs_todays_code(self) -> float:
        """The stricter figure: ÷ today's simulation code run in this run on this run's engine."""
        return self.function_cpu / self.baseline_cpu if self.baseline_cpu else 0.0

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
        """The replay's engine decisions/s ÷ the pure engine's decisions/s."""
        if not self.engine_per_second:
            return None
        return self.simulate_decisions_per_second / self.engine_per_second

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
    def same_answer_as_baseline(self) -> bool:
        """Today's code and this one count the same decisions, both policies (the log begins in the window)."""
        return all(self.report[side] == self.baseline_report[side] for side in ("current", "candidate"))

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
                "requests_by_kind": self.read_requests,
                "requests_for_all_events_by_kind": self.full_requests,
                "requests_per_100k_events": self.full_queries * 100_000 / self.events if self.events else 0.0,
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
                "current_vs_logged": self.report["current_vs_logged"],
            },
            "baseline": {
                "what": "today's code path before issue 12, kept in bench/simulation.py, same items, same run, "
                "on this run's engine",
                "parse_seconds": self.baseline_parse_seconds,
                "simulate_seconds": self.baseline_simulate_seconds,
                "function_seconds": self.baseline_seconds,
                "cpu_seconds": self.baseline_cpu,
                "same_answer": self.same_answer_as_baseline,
                "function_cpu_seconds": self.function_cpu,
                "ratio_vs_todays_code_on_this_engine": self.ratio_vs_todays_code,
                "validation_cpu_seconds": self.validation_cpu,
                "today_per_validation": TODAY_PER_VALIDATION,
                "today_seconds": self.today_seconds,
            },
            "simulation_100k_ratio_vs_baseline": {
                "value": self.ratio_vs_baseline,
                "target": RATIO_TARGET,
                "baseline": f"today's function work for the same {self.events:,} events: {TODAY_PER_VALIDATION} x the "
                f"CPU time of validating them with the contract's model in this run ({self.today_seconds:.1f} s)",
                "verdict": "pass" if self.ratio_vs_baseline <= RATIO_TARGET else "fail",
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
            "job_scale_out": None if self.scale is None else self.scale.as_json(),
            "at_scale_30_days_of_1m_a_day": None
            if self.scale is None
            else self.scale.at_scale(self.item_bytes_mean, self.replayables_mb / self.events, cost.PRICES),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Log:
    items: list[dict[str, Any]]  # decision-log items, in decision order
    actions: dict[str, int]
    customers: int
    end: datetime  # the last decision's time
    details: list[dict[str, Any]]  # the events, as upstream sent them, in time order


def make_log(events: int, days: int = DAYS, seed: int = 29, start: datetime = START) -> Log:
    """The log items the default policy leaves for `events` interactions of ~events/3 customers over
    `days` from `start`."""
    rng = random.Random(seed)
    customers = max(1, events // EVENTS_PER_CUSTOMER)
    zones = [workload.customer_zone(rng) for _ in range(customers)]
    found = []
    for n in range(events):
        customer = rng.randrange(customers)
        closed_at = start + timedelta(seconds=rng.uniform(0, days * 86400 - 3600))
        cid = f"sim-cust-{customer:06d}"
        found.append((closed_at, workload.detail(rng, f"sim-{n}", cid, closed_at, zones[customer])))
    found.sort(key=lambda pair: pair[0])
    policy, clock = default_policy(), EventClock()
    ledgers: dict[str, ContactLedger] = {}
    items: list[dict[str, Any]] = []
    logged: dict[str, tuple[int, Decision]] = {}  # pending decision_id -> its item's index, and it
    held: list[tuple[datetime, str, Decision]] = []  # pending follow-ups by send time: their schedules
    actions: Counter[str] = Counter()
    end = start

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
    return Log(items, dict(sorted(actions.items())), customers, end, [d for _, d in found])


def measure(
    events: int = 100_000,
    read_events: int = READ_EVENTS,
    days: int = DAYS,
    engine_per_second: float | None = None,
    scale_out: bool = True,
) -> SimulationResult:
    from bench.emulator import emulator

    read_events = max(1, min(events, read_events))
    started = time.perf_counter()
    log = make_log(events, days)
    generate_seconds = time.perf_counter() - started
    items, now = log.items, log.end + timedelta(minutes=1)
    job = simulation.plan({"policy": candidate_document(), "days": days}, default_policy(), now)

    # Every k-th item, so a smaller log still spans all the days.
    subset = [items[i * events // read_events] for i in range(read_events)]
    with emulator() as bench:
        table, stats_table = bench.stack.names["DecisionLogTable"], bench.stack.names["StatsTable"]
        write_seconds, write_requests = write_log(bench.dynamodb, table, stats_table, subset)
        reader = LogReader(table, stats_table, client=bench.dynamodb)
        with _only_new_objects_collected():
            read_started = time.perf_counter()
            found = list(reader.decisions(day_reads(job.window_start, job.window_end, range(job.partitions))))
            customers = sorted({d.customer_id for d in found})
            list(reader.histories(customers, job.warm_up_start, job.window_start, job.window_end))
            read_seconds = time.perf_counter() - read_started
    if len(found) != read_events:
        raise RuntimeError(f"the reader found {len(found)} of the {read_events} logged events")
    del subset, found

    sample = items[: min(len(items), MEMORY_SAMPLE)]
    replayables_mb = _decoded_mb(sample) * len(items) / len(sample)
    full_requests = _read_requests(items, days, now, log.customers)
    read_requests = {
        "day_page_queries": reader.pages.queries,
        "batch_gets": reader.batch_gets,
        "history_queries": reader.history_queries,
    }
    doc_bytes = sum(len(item["doc"]["S"]) for item in items) / len(items)
    item_bytes = sum(_item_size(item) for item in items) / len(items)
    memory = ItemsReader(items)  # the table: answers the same Queries, outside the timing

    with _timed() as parse:
        for item in items:
            decode(item)
    with _timed() as run:
        result = simulation.run_partitions(job, range(job.partitions), memory, squares=False)
    report = simulation.merge(job, [result])
    with _timed() as baseline_parse:
        replayables = reference_parse(items)
    with _timed() as baseline_simulate:
        baseline_report = reference_simulate(replayables, default_policy(), candidate_policy())
    del replayables
    scale = simulation_scale.measure(items, job, workers=SCALE_OUT_WORKERS) if scale_out else None
    validations = []
    for _ in range(VALIDATION_REPEATS):
        with _timed() as validation:
            for detail in log.details:
                InteractionClosed.model_validate(detail)
        validations.append(validation.cpu)
    baseline_report["candidate"]["version"] = simulation.CANDIDATE_VERSION
    return SimulationResult(
        events=events,
        customers=log.customers,
        days=days,
        logged_actions=log.actions,
        generate_seconds=generate_seconds,
        doc_bytes_mean=doc_bytes,
        item_bytes_mean=item_bytes,
        read_events=read_events,
        write_seconds=write_seconds,
        write_requests=write_requests,
        read_seconds=read_seconds,
        read_queries=sum(read_requests.values()),
        full_queries=sum(full_requests.values()),
        read_requests=read_requests,
        full_requests=full_requests,
        parse_seconds=parse.wall,
        replayables_mb=replayables_mb,
        function_seconds=run.wall,
        baseline_parse_seconds=baseline_parse.wall,
        baseline_simulate_seconds=baseline_simulate.wall,
        function_cpu=run.cpu,
        baseline_cpu=baseline_parse.cpu + baseline_simulate.cpu,
        validation_cpu=min(validations),
        report=report,
        baseline_report=baseline_report,
        engine_per_second=engine_per_second,
        scale=scale,
    )


def candidate_document() -> dict[str, Any]:
    return {**json.loads(DEFAULT_POLICY_FILE.read_text()), **CANDIDATE}


@dataclass
class _Timing:
    wall: float = 0.0
    cpu: float = 0.0  # this process's CPU time: what a shared, loaded machine disturbs least


@contextmanager
def _timed() -> Iterator[_Timing]:
    """Wall and CPU time of the block; the collector runs over what the block builds only (see
    _only_new_objects_collected)."""
    timing = _Timing()
    with _only_new_objects_collected():
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield timing
        finally:
            timing.wall, timing.cpu = time.perf_counter() - wall, time.process_time() - cpu


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


def _decoded_mb(items: list[dict[str, Any]]) -> float:
    """Memory the decoded decisions of these items keep, in MB (traced allocations still alive)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [decode(item) for item in items]
        gc.collect()
        size = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del kept
    return size / 1e6


def _item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size, near enough: attribute names plus their values' text."""
    return sum(len(name) + len(next(iter(value.values()))) for name, value in item.items())


def _read_requests(items: list[dict[str, Any]], days: int, now: datetime, customers: int) -> dict[str, int]:
    """Read requests all the partitions read together need for these items: a day-page Query per
    day of the window (more where a day's pages exceed a 1 MB Query page), a BatchGetItem per 100
    entries, and a by-customer Query per customer."""
    day_bytes: Counter[str] = Counter()
    for page in stream_pages(items, "stats"):
        day_bytes[page["day"]["S"]] += _item_size(page)
    dates = (now.date() - (now - timedelta(days=days)).date()).days + 1
    extra = sum(max(0, -(-size // PAGE_BYTES) - 1) for size in day_bytes.values())
    return {
        "day_page_queries": dates + extra,
        "batch_gets": -(-len(items) // log_entries.BATCH_KEYS),
        "history_queries": customers,
    }


def write_log(dynamodb: Any, table: str, stats_table: str, items: list[dict[str, Any]]) -> tuple[float, int]:
    """The log entries, and the day pages the log stream function would have written for them
    (log_replay.stream_pages: its batches of the entries' times), with BatchWriteItem: a log
    written without the stream, as the bench and tests generate it. (seconds, requests)."""
    entries = _batch_write(dynamodb, table, items)
    pages = _batch_write(dynamodb, stats_table, stream_pages(items, stats_table))
    return entries[0] + pages[0], entries[1] + pages[1]


def _batch_write(dynamodb: Any, table: str, items: list[dict[str, Any]]) -> tuple[float, int]:
    requests = 0
    started = time.perf_counter()
    for first in range(0, len(items), BATCH_WRITE):
        pending: dict[str, Any] = {table: [{"PutRequest": {"Item": i}} for i in items[first : first + BATCH_WRITE]]}
        while pending:
            requests += 1
            pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return time.perf_counter() - started, requests


# -- the baseline: today's code path before issue 12, verbatim (shared/usecases/simulation.py then) --------------


@dataclass(frozen=True)
class Replayable:
    event: InteractionClosed
    at: datetime

    @classmethod
    def of(cls, decision: Decision) -> Replayable:
        fields = decision.input.model_dump()
        event = InteractionClosed.model_validate(
            {
                "event_id": decision.event_id,
                "interaction_id": decision.interaction_id,
                "customer_id": decision.customer_id,
                **{k: v for k, v in fields.items() if v is not None},
            }
        )
        return cls(event, decision.decided_at)


def reference_parse(items: Iterable[dict[str, Any]]) -> list[Replayable]:
    """What logged_since did with each item a Query returned."""
    return [Replayable.of(decision_log.from_item(item)) for item in items]


class _Run:
    """One policy over the whole replay, with its own ledgers and held follow-ups."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.ledgers: dict[str, ContactLedger] = {}
        self.by_action: Counter[str] = Counter()
        self.by_reason: Counter[str] = Counter()
        self.released: Counter[str] = Counter()  # by action
        self.cancelled: Counter[str] = Counter()  # by CancelReason
        self.outcomes_applied = 0
        self._held: list[tuple[datetime, str, Decision]] = []  # pending follow-ups by send time
        self._customer_of: dict[str, str] = {}

    def settle(self, until: datetime) -> None:
        while self._held and self._held[0][0] <= until:
            at, decision_id, decision = heapq.heappop(self._held)
            ledger = self.ledgers[decision.customer_id]
            followup = ledger.find(decision_id)
            if followup is None or not followup.pending:
                continue
            state, reason, _ = engine.recheck(followup, decision, ledger, self.policy, at)
            if state is State.RELEASED:
                self.ledgers[decision.customer_id] = ledger.released(decision_id)
                self.released[str(decision.action)] += 1
            else:
                self.ledgers[decision.customer_id] = ledger.cancelled(decision_id)
                self.cancelled[str(reason)] += 1

    def record(self, outcome: FollowUpOutcome) -> None:
        customer = self._customer_of.get(outcome.decision_id)
        ledger = self.ledgers.get(customer) if customer else None
        followup = ledger.find(outcome.decision_id) if ledger else None
        if ledger is None or followup is None or followup.pending or not outcome.type.fits(followup.kind):
            return
        self.ledgers[ledger.customer_id] = ledger.with_outcome(outcome)
        self.outcomes_applied += 1

    def decide(self, item: Replayable) -> Decision:
        customer = item.event.customer_id
        ledger = self.ledgers.get(customer) or ContactLedger(customer)
        decision = engine.decide(item.event, ledger, self.policy, item.at)
        if decision.approved or decision.supersedes:
            self.ledgers[customer] = ledger.after(decision, self.policy.ledger_retention, item.at)
        self.cancelled[str(CancelReason.SUPERSEDED_BY_NEWER_INTERACTION)] += len(decision.supersedes)
        if decision.state is State.PENDING and decision.send_at is not None:
            heapq.heappush(self._held, (decision.send_at, decision.decision_id, decision))
        elif decision.state is State.RELEASED:
            self.released[str(decision.action)] += 1
        if decision.approved:
            self._customer_of[decision.decision_id] = customer
        self.by_action[str(decision.action)] += 1
        self.by_reason[str(decision.reason)] += 1
        return decision

    def summary(self) -> dict[str, Any]:
        return {
            "version": self.policy.version,
            "by_action": dict(self.by_action),
            "by_reason": dict(self.by_reason),
            "released": sum(self.released.values()),
            "cancelled": sum(self.cancelled.values()),
            "cancelled_by_reason": {k: v for k, v in sorted(self.cancelled.items()) if v},
            "pending": len(self._held),
            "outcomes_applied": self.outcomes_applied,
        }


def reference_simulate(
    items: Iterable[Replayable],
    current: Policy,
    candidate: Policy,
    sample_size: int = 20,
    outcomes: Iterable[FollowUpOutcome] = (),
) -> dict[str, Any]:
    ordered = sorted(items, key=lambda i: (i.at, i.event.event_id))
    reported = sorted(outcomes, key=lambda o: (o.occurred_at, o.outcome_id))
    before, after = _Run(current), _Run(candidate)
    changed = 0
    sample: dict[str, list[dict[str, Any]]] = {}
    waiting = iter(reported)
    next_outcome = next(waiting, None)
    for item in ordered:
        while next_outcome is not None and next_outcome.occurred_at <= item.at:
            for run in (before, after):
                run.settle(next_outcome.occurred_at)
                run.record(next_outcome)
            next_outcome = next(waiting, None)
        for run in (before, after):
            run.settle(item.at)
        old, new = before.decide(item), after.decide(item)
        if (old.action, old.reason) == (new.action, new.reason):
            continue
        changed += 1
        customer = item.event.customer_id
        if customer in sample or len(sample) < sample_size:
            sample.setdefault(customer, []).append(
                {
                    "event_id": item.event.event_id,
                    "closed_at": item.event.closed_at.isoformat(),
                    "current": {"action": str(old.action), "reason": str(old.reason)},
                    "candidate": {"action": str(new.action), "reason": str(new.reason)},
                }
            )
    for run in (before, after):
        run.settle(datetime.max.replace(tzinfo=UTC))
    actions = sorted(set(before.by_action) | set(after.by_action))
    reasons = sorted(set(before.by_reason) | set(after.by_reason))
    return {
        "events": len(ordered),
        "current": before.summary(),
        "candidate": after.summary(),
        "difference": {
            "by_action": {k: after.by_action[k] - before.by_action[k] for k in actions},
            "by_reason": {k: after.by_reason[k] - before.by_reason[k] for k in reasons},
        },
        "changed_events": changed,
        "changed_customers_sample": [{"customer_id": c, "events": e} for c, e in sample.items()],
    }
