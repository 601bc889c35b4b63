"""What-if: replay the logged events of a window through the pure engine under the current and a
candidate policy, and compare. Nothing is written.

The interface (JSON in, JSON out, so a job can carry it between Lambda invocations):

    plan(request, current, now, logged_events=None, max_events_per_partition=None) -> JobPlan
        request: {"policy": {...candidate document...}, "days": N, "sample_size": k}
        JobPlan.as_json(): {"days", "window_start", "window_end", "warm_up_start",
                            "current": {"version", "policy"}, "candidate": {"version": -1, "policy"},
                            "partitions": 16 x sub_partitions, "sample_partition": 0, "sample_size",
                            "retention_days", "sub_partitions", "logged_events"}
        Given the window's logged_events (the job's plan step counts them from the stats table's
        daily totals), `sized` splits each of the 16 customer shards into sub-partitions so that no
        partition holds more than max_events_per_partition() (below); 1 for a small log: 16.
    run_partition(plan, partition_index, reader, progress_callback=None) -> PartitionResult
        reader: shared.adapters.log_replay.LogReader(table, stats_table, client=None) (reads on 16
        threads);
        progress_callback({"partitions": [p], "events", "customers", "events_replayed"}) once the
        window is read, then after every CUSTOMERS_PER_BATCH customers replayed;
        PartitionResult.as_json() / PartitionResult.of(json) cross process boundaries.
    merge(plan, results, seconds=None) -> dict
        every partition exactly once: the answer of POST /policy/simulate (`days`, `seconds`: the
        partitions' own work unless given, and the fields below); refuses a missing partition.
    estimate(plan, results) -> dict
        some partitions (SAMPLE_PARTITION: 1/partitions of the customers by hash): the same answer
        with every count scaled by partitions/k, plus "estimate": {"partitions", "share_of_customers",
        "customers_replayed", "standard_error": {"current.by_action.survey": ...},
        "interval_95": {...: [low, high]}} (Horvitz-Thompson over customers sampled by hash).
    simulate_window(request, current, now, reader) -> dict
        the synchronous answer: every partition in this process, each day's pages read once.
    `run_partition`, `merge` and `estimate` accept the plan and results as objects or as their
    JSON. A partition fails by raising; running it again gives the same result.

Partitions. A partition is the customers of one hash (log_replay.partition_of: shard p % 16 of
the customer's hash, sub-partition p // 16 of its higher part when the plan splits shards). For
each day of the window a partition reads the day's pages (the log stream function lists every
decision of the day there: time, id, customer; shared.adapters.day_pages), keeps the rows of its
own customers and reads only their entries, by key (shared.adapters.log_entries): its memory and
its entry reads divide by the partitions, its page reads (~60 bytes a decision) repeat in each.
Then one Query per customer on index by-customer over [warm-up start, window end) for the
customer's earlier approvals, outcome records and opt-out changes (admin records), and each
customer is replayed, in time order, alone (shared.domain.replay). Partition results add up to
the single-process result exactly (a test compares). A decision is listed on its day's pages
once its stream batch was counted, seconds after it was made: a window ending now may miss the
last seconds' decisions (the answer's `logged` counts come from the same read, so they agree).

The window is whole UTC days, as `governor stats` counts them: from 00:00 UTC of the day `days`
days ago to now. Warm-up: the ledgers start the window as production had them, built from the
logged approvals (their lifecycle as logged), outcomes and opt-outs of the `warm-up` before the
window: the longest span any rule of either policy looks back (Policy.ledger_retention: caps,
gaps, the cooldown after a response, fatigue, and at least a year for "one follow-up per
interaction"). Nothing before the window is decided again.

Honesty. The answer carries what was logged in the window (`logged`), how the current policy's
replay compares with it, event by event (`current_vs_logged`, with each kind of difference
explained), which days of the window the log covers (`log`), and `warnings` when the window is
longer than the log or the warm-up reaches past the log's retention.

The mismatch reported on the replayed sample (84 surveys replayed under the current policy, 66
logged, over 30 days): the sample spans 28 days ending 8 days before the simulation, so its first
5 days fell before the window and the replay started every ledger empty; customers surveyed in
those days were surveyed again in the window (caps of 1 per 30 days). With the warm-up the
replay decides every logged decision of the sample as logged (tests/integration/test_simulation_partitions.py).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from pydantic import ValidationError

from shared.adapters.log_replay import SHARDS, LogReader, day_reads
from shared.domain.errors import InvalidInput, field_problems
from shared.domain.policy import Policy
from shared.domain.replay import (
    Agreement,
    Logged,
    PartitionReplay,
    Replayed,
    Tally,
    Timeline,
    WarmUp,
    standard_error,
)

PARTITIONS = SHARDS  # a plan's partitions: PARTITIONS x its sub-partitions
SAMPLE_PARTITION = 0  # the deterministic customer sample: 1/partitions of the customers, by hash
# Sizing a job (plan(..., logged_events=)): the SimulationPartitionFunction's MemorySize and Timeout
# (template.yaml; tests/test_simulation_template.py holds them equal), the share of each a partition
# plans to use, and what `make bench` measured per partition (bench/simulation_scale.py, reduced run
# of 2026-12-01: 1,419.7 MB of decoded decisions for 1.875 M events; 7,852 events/s of function
# work). Memory binds first: ~976,000 events per partition, so a shard of a log larger than that is
# split. The shares leave room for what is not decoded decisions (pages in flight, histories,
# the interpreter) and for the reads, whose time the bench assumes rather than measures.
PARTITION_MEMORY_MB = 1769
PARTITION_TIMEOUT_SECONDS = 900
MEMORY_SHARE = 0.4
TIME_SHARE = 0.5
DECODED_BYTES_PER_EVENT = 760
EVENTS_PER_SECOND = 7_852
MAX_SUB_PARTITIONS = 64  # 1,024 partitions: ~1 billion events in a window within the shares above
SYNC_MAX_DAYS = 90  # POST /policy/simulate: API Gateway answers within 29 s
JOB_MAX_DAYS = 400  # the log's retention (template DecisionRetentionDays)
CANDIDATE_VERSION = -1  # not stored yet
MAX_SAMPLE = 200  # customers whose outcome changes, named in the answer at most
CUSTOMERS_PER_BATCH = 2_000  # customers whose histories are read, then replayed, at a time
Z_95 = 1.96
Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class JobPlan:
    days: int
    window_start: datetime
    window_end: datetime
    warm_up_start: datetime
    current_version: int
    current_policy: dict[str, Any]
    candidate_policy: dict[str, Any]
    sample_size: int = 20
    partitions: int = PARTITIONS
    sample_partition: int = SAMPLE_PARTITION
    retention_days: int = JOB_MAX_DAYS
    # Each customer shard split by a finer customer hash (log_replay.partition_of): partition p is
    # shard p % 16, sub-partition p // 16. A plan stored before sub-partitions existed has 1 (its JSON
    # has no such field), which is exactly how it ran then.
    sub_partitions: int = 1
    logged_events: int | None = None  # the window's events by the stats table, when the plan was sized

    def __post_init__(self) -> None:
        if self.partitions != PARTITIONS * self.sub_partitions:
            raise ValueError(f"a plan of {self.sub_partitions} sub-partitions has {PARTITIONS * self.sub_partitions}")

    @cached_property
    def policies(self) -> tuple[Policy, Policy]:
        """The current and the candidate policy, validated once per plan."""
        stored = {"stored": True}
        current = Policy.model_validate({**self.current_policy, "version": self.current_version}, context=stored)
        candidate = Policy.model_validate({**self.candidate_policy, "version": 0}, context=stored)
        return current, candidate.model_copy(update={"version": CANDIDATE_VERSION})

    def as_json(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "warm_up_start": self.warm_up_start.isoformat(),
            "current": {"version": self.current_version, "policy": self.current_policy},
            "candidate": {"version": CANDIDATE_VERSION, "policy": self.candidate_policy},
            "sample_size": self.sample_size,
            "partitions": self.partitions,
            "sample_partition": self.sample_partition,
            "retention_days": self.retention_days,
            "sub_partitions": self.sub_partitions,
            "logged_events": self.logged_events,
        }

    @classmethod
    def of(cls, given: JobPlan | Mapping[str, Any]) -> JobPlan:
        if isinstance(given, JobPlan):
            return given
        return cls(
            days=int(given["days"]),
            window_start=datetime.fromisoformat(given["window_start"]),
            window_end=datetime.fromisoformat(given["window_end"]),
            warm_up_start=datetime.fromisoformat(given["warm_up_start"]),
            current_version=int(given["current"]["version"]),
            current_policy=dict(given["current"]["policy"]),
            candidate_policy=dict(given["candidate"]["policy"]),
            sample_size=int(given["sample_size"]),
            partitions=int(given["partitions"]),
            sample_partition=int(given["sample_partition"]),
            retention_days=int(given["retention_days"]),
            sub_partitions=int(given.get("sub_partitions", 1)),
            logged_events=None if given.get("logged_events") is None else int(given["logged_events"]),
        )


@dataclass
class PartitionResult:
    partitions: list[int]
    replayed: Replayed
    queries: int = 0
    items_read: int = 0
    seconds: float = 0.0
    batch_gets: int = 0  # BatchGetItem requests (the entries the day pages listed, by key)

    def as_json(self) -> dict[str, Any]:
        return {
            "partitions": self.partitions,
            "replayed": self.replayed.as_json(),
            "queries": self.queries,
            "items_read": self.items_read,
            "seconds": self.seconds,
            "batch_gets": self.batch_gets,
        }

    @classmethod
    def of(cls, given: PartitionResult | Mapping[str, Any]) -> PartitionResult:
        if isinstance(given, PartitionResult):
            return given
        return cls(
            [int(p) for p in given["partitions"]],
            Replayed.from_json(given["replayed"]),
            int(given["queries"]),
            int(given["items_read"]),
            float(given["seconds"]),
            int(given.get("batch_gets", 0)),  # a result recorded before day pages has none
        )


def plan(
    request: Mapping[str, Any],
    current: Policy,
    now: datetime,
    *,
    max_days: int = JOB_MAX_DAYS,
    retention_days: int = JOB_MAX_DAYS,
    logged_events: int | None = None,
    max_events_per_partition: int | None = None,
) -> JobPlan:
    """The job: its window, both policies (as documents, with the current version), its partitions
    and the warm-up start. Refuses, by field, a candidate that is not a valid policy or a window
    out of range (the synchronous route allows SYNC_MAX_DAYS: a longer window is a job). Given the
    window's `logged_events`, its partitions are sized to them (`sized`)."""
    candidate = _candidate(request.get("policy"))
    days = request.get("days", 30)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= max_days:
        hint = "" if max_days >= JOB_MAX_DAYS else f"; up to {JOB_MAX_DAYS} days as a job: POST /policy/simulations"
        raise InvalidInput(
            f"days must be a whole number from 1 to {max_days}{hint}",
            [{"field": "days", "message": f"must be 1 to {max_days}{hint}"}],
        )
    sample_size = request.get("sample_size", 20)
    if not isinstance(sample_size, int) or isinstance(sample_size, bool) or not 0 <= sample_size <= MAX_SAMPLE:
        problem = f"must be 0 to {MAX_SAMPLE}"
        raise InvalidInput(f"sample_size {problem}", [{"field": "sample_size", "message": problem}])
    end = now.astimezone(UTC)
    start = datetime.combine((end - timedelta(days=days)).date(), datetime.min.time(), UTC)
    look_back = max(current.ledger_retention, candidate.ledger_retention)
    job = JobPlan(
        days=days,
        window_start=start,
        window_end=end,
        warm_up_start=start - look_back,
        current_version=current.version,
        current_policy=current.document(),
        candidate_policy=candidate.document(),
        sample_size=sample_size,
        retention_days=retention_days,
    )
    return job if logged_events is None else sized(job, logged_events, max_events_per_partition)


def max_events_per_partition() -> int:
    """The most events one partition plans to hold: MEMORY_SHARE of the function's memory at the
    measured bytes per decoded decision, and TIME_SHARE of its timeout at the measured rate."""
    by_memory = MEMORY_SHARE * PARTITION_MEMORY_MB * 2**20 / DECODED_BYTES_PER_EVENT
    by_time = TIME_SHARE * PARTITION_TIMEOUT_SECONDS * EVENTS_PER_SECOND
    return int(min(by_memory, by_time))


def sub_partitions_for(logged_events: int, max_events: int | None = None) -> int:
    """Sub-partitions per customer shard so that a partition holds at most `max_events` of a window of
    `logged_events` (the shards are customer hashes: even, give or take a few customers)."""
    limit = max_events or max_events_per_partition()
    if limit < 1:
        raise ValueError("max_events must be at least 1")
    wanted = -(-max(0, logged_events) // (PARTITIONS * limit))
    return max(1, min(MAX_SUB_PARTITIONS, wanted))


def sized(plan: JobPlan | Mapping[str, Any], logged_events: int, max_events: int | None = None) -> JobPlan:
    """The plan with its partitions sized to the window's events (1 sub-partition per shard, the
    16 partitions of before, up to a shard's share of max_events_per_partition())."""
    job = JobPlan.of(plan)
    subs = sub_partitions_for(logged_events, max_events)
    return replace(job, partitions=PARTITIONS * subs, sub_partitions=subs, logged_events=max(0, logged_events))


def _candidate(document: Any) -> Policy:
    if not isinstance(document, dict):
        raise InvalidInput("policy must be an object", [{"field": "policy", "message": "must be an object"}])
    try:
        return Policy.model_validate({**document, "version": 0})
    except ValidationError as error:
        problems = field_problems(error, prefix=("policy",))
        raise InvalidInput(f"the policy has {len(problems)} problem(s); nothing was changed", problems) from None


def run_partition(
    plan: JobPlan | Mapping[str, Any],
    partition_index: int,
    reader: LogReader,
    progress_callback: Progress | None = None,
) -> PartitionResult:
    """Replays the customers of one partition (customer shard `partition_index` % 16, those of
    sub-partition `partition_index` // 16 when the plan splits shards)."""
    job = JobPlan.of(plan)
    if not 0 <= partition_index < job.partitions:
        raise ValueError(f"partition {partition_index} is not one of the plan's {job.partitions}")
    return run_partitions(job, [partition_index], reader, progress_callback)


def run_partitions(
    plan: JobPlan | Mapping[str, Any],
    partitions: Sequence[int],
    reader: LogReader,
    progress_callback: Progress | None = None,
    *,
    squares: bool = True,
) -> PartitionResult:
    """Replays the customers of these partitions together, each day's pages read once. Without
    `squares` the result can be merged but not estimated from (the synchronous path needs none)."""
    job = JobPlan.of(plan)
    started, queries, items, gets = time.perf_counter(), reader.queries, reader.items, reader.batch_gets
    current, candidate = job.policies
    timelines: dict[str, Timeline] = {}
    reads = day_reads(job.window_start, job.window_end, partitions, job.sub_partitions)
    for decision in reader.decisions(reads):
        timelines.setdefault(decision.customer_id, Timeline(decision.customer_id)).decisions.append(decision)
    events = sum(len(t.decisions) for t in timelines.values())
    progress = _Progress(progress_callback, list(partitions), events, len(timelines))
    progress.report()
    replay = PartitionReplay(current, candidate, job.window_start, job.sample_size, squares=squares)
    customers = sorted(timelines)
    for first in range(0, len(customers), CUSTOMERS_PER_BATCH):
        batch = customers[first : first + CUSTOMERS_PER_BATCH]
        for customer, history in reader.histories(batch, job.warm_up_start, job.window_start, job.window_end):
            timeline = timelines.pop(customer)
            timeline.history, timeline.outcomes, timeline.changes = history.approvals, history.outcomes, history.changes
            timeline.decisions.sort(key=lambda d: (d.decided_at, d.event_id))
            progress.replayed += replay.replay(timeline)
        progress.report()
    return PartitionResult(
        sorted(partitions),
        replay.result,
        queries=reader.queries - queries,
        items_read=reader.items - items,
        seconds=round(time.perf_counter() - started, 3),
        batch_gets=reader.batch_gets - gets,
    )


@dataclass
class _Progress:
    callback: Progress | None
    partitions: list[int]
    events: int
    customers: int
    replayed: int = 0

    def report(self) -> None:
        if self.callback is not None:
            self.callback(
                {
                    "partitions": self.partitions,
                    "events": self.events,
                    "customers": self.customers,
                    "events_replayed": self.replayed,
                }
            )


def simulate_window(
    request: Mapping[str, Any],
    current: Policy,
    now: datetime,
    reader: LogReader,
    *,
    max_days: int = SYNC_MAX_DAYS,
    retention_days: int = JOB_MAX_DAYS,
) -> dict[str, Any]:
    """The synchronous answer (POST /policy/simulate): every partition in this process."""
    job = plan(request, current, now, max_days=max_days, retention_days=retention_days)
    result = run_partitions(job, range(job.partitions), reader, squares=False)
    return merge(job, [result])


def merge(
    plan: JobPlan | Mapping[str, Any],
    results: Sequence[PartitionResult | Mapping[str, Any]],
    seconds: float | None = None,
) -> dict[str, Any]:
    """The answer from every partition's result (each partition exactly once)."""
    job = JobPlan.of(plan)
    found = [PartitionResult.of(r) for r in results]
    covered = sorted(p for r in found for p in r.partitions)
    if covered != list(range(job.partitions)):
        raise ValueError(f"merge needs each of the {job.partitions} partitions once, got {covered}")
    total = _total(found, job.sample_size)
    return _answer(job, total, sum(r.seconds for r in found) if seconds is None else seconds)


def estimate(
    plan: JobPlan | Mapping[str, Any],
    results: Sequence[PartitionResult | Mapping[str, Any]],
) -> dict[str, Any]:
    """The answer estimated from some partitions (a deterministic sample of the customers by hash):
    every count scaled by partitions / sampled, with its standard error and 95 % interval."""
    job = JobPlan.of(plan)
    found = [PartitionResult.of(r) for r in results]
    sampled = sorted(p for r in found for p in r.partitions)
    if not sampled or len(set(sampled)) != len(sampled) or not set(sampled) <= set(range(job.partitions)):
        raise ValueError(f"estimate needs distinct partitions of the plan's {job.partitions}, got {sampled}")
    share = len(sampled) / job.partitions
    total = _total(found, job.sample_size)
    answer = _answer(job, _scaled(total, 1 / share), sum(r.seconds for r in found))
    flat = _flat(total)
    errors = {name: standard_error(total.squares.get(name, 0), share) for name in sorted(flat)}
    answer["estimate"] = {
        "partitions": sampled,
        "share_of_customers": share,
        "customers_replayed": total.customers,
        "standard_error": {name: round(se, 1) for name, se in errors.items()},
        "interval_95": {
            name: [_low(name, flat[name] / share - Z_95 * se), round(flat[name] / share + Z_95 * se, 1)]
            for name, se in errors.items()
        },
    }
    return answer


def _low(name: str, value: float) -> float:
    return round(value if name.startswith("difference.") else max(0.0, value), 1)


def _total(results: Sequence[PartitionResult], sample_size: int) -> Replayed:
    total = Replayed()
    for result in results:
        total.add(result.replayed, sample_size)
    return total


def _flat(replayed: Replayed) -> dict[str, int]:
    """Every additive count by its flat name, as the per-customer squares are kept."""
    flat = {"events": replayed.events, "changed_events": replayed.changed_events}
    for side, tally in (("current", replayed.current), ("candidate", replayed.candidate)):
        flat[f"{side}.released"] = sum(tally.released.values())
        flat[f"{side}.cancelled"] = sum(tally.cancelled.values())
        flat[f"{side}.outcomes_applied"] = tally.outcomes_applied
        flat.update({f"{side}.by_action.{k}": v for k, v in tally.by_action.items()})
        flat.update({f"{side}.by_reason.{k}": v for k, v in tally.by_reason.items()})
    flat.update({f"logged.by_action.{k}": v for k, v in replayed.logged.by_action.items()})
    flat.update({f"logged.by_reason.{k}": v for k, v in replayed.logged.by_reason.items()})
    for name in ("by_action", "by_reason"):
        mine: Counter[str] = getattr(replayed.current, name)
        theirs: Counter[str] = getattr(replayed.candidate, name)
        flat.update({f"difference.{name}.{k}": theirs[k] - mine[k] for k in mine.keys() | theirs.keys()})
    return flat


def _scaled(replayed: Replayed, factor: float) -> Replayed:
    """Every count multiplied by `factor` (rounded); days, the sample and the squares kept."""

    def times(counter: Counter[str]) -> Counter[str]:
        return Counter({k: round(v * factor) for k, v in counter.items()})

    def tally(t: Tally) -> Tally:
        return Tally(
            times(t.by_action),
            times(t.by_reason),
            times(t.released),
            times(t.cancelled),
            round(t.outcomes_applied * factor),
            round(t.pending * factor),
        )

    logged, agreement, warm = replayed.logged, replayed.agreement, replayed.warm_up
    return replace(
        replayed,
        customers=round(replayed.customers * factor),
        events=round(replayed.events * factor),
        changed_events=round(replayed.changed_events * factor),
        current=tally(replayed.current),
        candidate=tally(replayed.candidate),
        logged=Logged(
            times(logged.by_action),
            times(logged.by_reason),
            times(logged.by_policy_version),
            times(logged.by_state),
            times(logged.cancelled_by_reason),
            set(logged.days),
        ),
        agreement=Agreement(
            round(agreement.matching * factor),
            round(agreement.other_policy_version * factor),
            round(agreement.unexplained * factor),
            list(agreement.unexplained_sample),
        ),
        warm_up=WarmUp(
            round(warm.approvals * factor),
            round(warm.pending_at_start * factor),
            round(warm.outcomes * factor),
            round(warm.preference_changes * factor),
            warm.first_day,
        ),
    )


def _answer(job: JobPlan, total: Replayed, seconds: float) -> dict[str, Any]:
    current = total.current.summary(job.current_version)
    candidate = total.candidate.summary(CANDIDATE_VERSION)
    actions = sorted(set(total.current.by_action) | set(total.candidate.by_action))
    reasons = sorted(set(total.current.by_reason) | set(total.candidate.by_reason))
    logged = total.logged
    window_days = (job.window_end.date() - job.window_start.date()).days + 1
    days = sorted(d.isoformat() for d in logged.days)
    return {
        "days": job.days,
        "seconds": seconds,
        "events": total.events,
        "current": current,
        "candidate": candidate,
        "difference": {
            "by_action": {k: total.candidate.by_action[k] - total.current.by_action[k] for k in actions},
            "by_reason": {k: total.candidate.by_reason[k] - total.current.by_reason[k] for k in reasons},
        },
        "changed_events": total.changed_events,
        "changed_customers_sample": [{"customer_id": c, "events": e} for _, _, c, e in total.sample],
        "window": {
            "start": job.window_start.isoformat(),
            "end": job.window_end.isoformat(),
            "warm_up_start": job.warm_up_start.isoformat(),
        },
        "log": {
            "first_day": days[0] if days else None,
            "last_day": days[-1] if days else None,
            "days_with_decisions": len(days),
            "window_days": window_days,
            "warm_up": total.warm_up.as_json(),
        },
        "logged": {
            "by_action": dict(logged.by_action),
            "by_reason": dict(logged.by_reason),
            "by_policy_version": dict(logged.by_policy_version),
            "released": logged.by_state["released"],
            "cancelled": logged.by_state["cancelled"],
            "cancelled_by_reason": dict(sorted(logged.cancelled_by_reason.items())),
            "pending": logged.by_state["pending"],
        },
        "current_vs_logged": {
            "matching": total.agreement.matching,
            "differing": total.agreement.other_policy_version + total.agreement.unexplained,
            "other_policy_version": total.agreement.other_policy_version,
            "unexplained": total.agreement.unexplained,
            "unexplained_sample": total.agreement.unexplained_sample,
            "explanations": _explanations(job, total),
        },
        "warnings": _warnings(job, total, window_days),
    }


def _warnings(job: JobPlan, total: Replayed, window_days: int) -> list[str]:
    days = sorted(d.isoformat() for d in total.logged.days)
    start_day = job.window_start.date().isoformat()
    found: list[str] = []
    if not days:
        found.append(
            f"the log holds no decision from {start_day} to {job.window_end.date().isoformat()}: nothing was replayed"
        )
    elif days[0] > start_day:
        found.append(
            f"the window starts on {start_day} but the log's first decision in it is on {days[0]}: the log has "
            f"decisions on {len(days)} of the window's {window_days} days, so the window is longer than the log "
            "and nothing before it warms the ledgers; the counts cover the logged days only"
        )
    retained_from = job.window_end - timedelta(days=job.retention_days)
    if job.warm_up_start < retained_from:
        found.append(
            f"the policies' rules look back to {job.warm_up_start.date().isoformat()} "
            f"({(job.window_start - job.warm_up_start).days} days before the window) but the log keeps "
            f"{job.retention_days} days: history before {retained_from.date().isoformat()} is not in the ledgers, "
            "so caps and cooldowns reaching that far are understated"
        )
    return found


def _explanations(job: JobPlan, total: Replayed) -> list[str]:
    agreement, logged = total.agreement, total.logged
    said: list[str] = []
    others = {v: n for v, n in logged.by_policy_version.items() if v != str(job.current_version)}
    if others:
        versions = ", ".join(f"{v} ({n})" for v, n in sorted(others.items()))
        said.append(
            f"{sum(others.values())} of the {total.events} logged decisions were made under policy version(s) "
            f"{versions}, not the current {job.current_version}; replayed under version {job.current_version}, "
            f"{agreement.other_policy_version} of them decide otherwise"
        )
    if agreement.unexplained:
        said.append(
            f"{agreement.unexplained} decisions logged under the current version {job.current_version} decide "
            "otherwise when replayed (unexplained_sample names some): causes the log does not show, such as "
            "events decided live out of time order, an opt-out older than the log, or a policy change within "
            "the deciders' policy cache"
        )
    pending = logged.by_state["pending"]
    if pending:
        said.append(
            f"{pending} follow-ups decided in the window are still pending in the log (due after now); the replay "
            "lets every held follow-up fall due, so its released and cancelled counts include them"
        )
    if not said:
        said.append(
            f"the current policy, replayed, decides each of the {total.events} logged decisions of the window as logged"
        )
    return said
