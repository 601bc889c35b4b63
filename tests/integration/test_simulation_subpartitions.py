"""A simulation job sized to its log (issue 12, goal 4 at 30 days of 1 million events a day): the
plan reads the stats table's daily totals and splits each day shard into sub-partitions by a finer
customer hash, so no partition outgrows its function; the answer is the unsplit one exactly.

The log is the bench's generated one, written to moto's decision log table with the day pages the
log stream function would have written for it (as test_simulation_partitions does); the daily
totals are real counter items written through the stats adapter."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import pytest

from bench import simulation as bench
from infra.lambda_runtime import LambdaContext
from infra.local.simulations import SimulationRunner
from shared import wiring
from shared.adapters.clock import FixedClock
from shared.adapters.log_replay import SHARDS, LogReader, day_reads, partition_of
from shared.adapters.stats import Stats
from shared.domain.policy import default_policy
from shared.usecases import simulation
from tests.integration.test_simulation_job import call, environment, runner, without_timing

__all__ = ["environment", "runner"]  # fixtures: the job functions' environment, the state machine runner

REQUEST = {"policy": bench.candidate_document(), "days": 1, "sample_size": 5}
START = datetime(2026, 12, 12, tzinfo=UTC)


@pytest.fixture
def log(aws: Any) -> Iterator[bench.Log]:
    """150 generated decisions over a day in the decision log table, listed on their day's pages;
    the clock just after them."""
    generated = bench.make_log(150, days=1, start=START)
    bench.write_log(boto3.client("dynamodb"), aws.names["DecisionLogTable"], aws.names["StatsTable"], generated.items)
    wiring.use_clock(FixedClock(generated.end + timedelta(minutes=1)))
    yield generated


def count_days(aws: Any, totals: dict[date, int], first: str = "1") -> None:
    """The stats table holds these daily totals, as the log stream function writes them."""
    stats = Stats(aws.names["StatsTable"], client=boto3.client("dynamodb"))
    counts = {day.isoformat(): Counter({"total": n, "a_none": n}) for day, n in totals.items()}
    assert stats.add(first, None, first, counts, datetime.now().astimezone()).value == "done"


def window_days(log: bench.Log) -> list[date]:
    end = (log.end + timedelta(minutes=1)).date()
    return [end - timedelta(days=n) for n in range(2)]


def test_a_customer_keeps_its_shard_and_falls_in_one_sub_partition() -> None:
    customers = [f"cust-{n}" for n in range(2_000)]
    # Then with one sub-partition the customers spread over the 16 shards
    assert set(Counter(partition_of(c) for c in customers)) == set(range(SHARDS))
    # And split in 3, every customer stays in its shard, and the sub-partitions are about even
    split = Counter(partition_of(c, 3) for c in customers)
    assert all(partition_of(c, 3) % SHARDS == partition_of(c) for c in customers)
    assert set(split) == set(range(48))
    assert min(split.values()) > 2_000 / 48 / 2


def test_a_plan_is_sized_to_the_events_of_its_window() -> None:
    now = datetime.fromisoformat("2026-11-23T12:00:00+00:00")
    request = {"policy": {}, "days": 30}
    # A small log: the 16 partitions of before
    small = simulation.plan(request, default_policy(), now, logged_events=100_000)
    assert (small.partitions, small.sub_partitions) == (16, 1)
    # 30 days of 1 million events: each shard split so that a partition holds under the limit
    limit = simulation.max_events_per_partition()
    big = simulation.plan(request, default_policy(), now, logged_events=30_000_000)
    assert big.sub_partitions == 2 and big.partitions == 32
    assert 30_000_000 / big.partitions <= limit
    assert limit * simulation.DECODED_BYTES_PER_EVENT <= 0.4 * simulation.PARTITION_MEMORY_MB * 2**20
    # A given limit (the test's way to split a small log), and the most sub-partitions a plan takes
    assert (
        simulation.plan(request, default_policy(), now, logged_events=100, max_events_per_partition=2).partitions == 64
    )
    assert simulation.sub_partitions_for(10**12) == simulation.MAX_SUB_PARTITIONS


def test_sub_partitions_read_alone_and_merged_equal_the_unsplit_answer(aws: Any, log: bench.Log) -> None:
    now = log.end + timedelta(minutes=1)
    reader = LogReader(aws.names["DecisionLogTable"], aws.names["StatsTable"], client=boto3.client("dynamodb"))
    whole = simulation.simulate_window(REQUEST, default_policy(), now, reader)
    # Given a plan that splits each shard in 3 (at most 3 events a partition of 150)
    plan = simulation.plan(REQUEST, default_policy(), now, logged_events=150, max_events_per_partition=3)
    assert (plan.sub_partitions, plan.partitions) == (4, 64)
    # When each partition reads and replays its customers alone
    parts = [simulation.run_partition(plan.as_json(), p, reader) for p in range(plan.partitions)]
    # Then merged, the answer is the unsplit one exactly
    merged = simulation.merge(plan.as_json(), [p.as_json() for p in parts])
    assert without_timing(merged) == without_timing(whole)
    assert merged["events"] == len(log.items)
    # And a partition read only its own customers' entries: the pages' other rows were dropped
    busiest = max(range(plan.partitions), key=lambda p: parts[p].replayed.events)
    reads = day_reads(plan.window_start, plan.window_end, [busiest], 4)
    fetched = reader.items
    mine = list(reader.decisions(reads))
    assert len(mine) == reader.items - fetched == parts[busiest].replayed.events > 0
    assert {partition_of(d.customer_id, 4) for d in mine} == {busiest}
    assert sum(p.replayed.events for p in parts) == len(log.items)
    # And the sample partition's estimate scales its share (1/64 of the customers) back up
    estimate = simulation.estimate(plan, [parts[plan.sample_partition]])
    assert estimate["estimate"]["share_of_customers"] == 1 / 64
    assert estimate["events"] == round(parts[0].replayed.events * 64)


def test_a_plan_document_from_before_sub_partitions_still_runs(aws: Any, log: bench.Log) -> None:
    now = log.end + timedelta(minutes=1)
    reader = LogReader(aws.names["DecisionLogTable"], aws.names["StatsTable"], client=boto3.client("dynamodb"))
    # Given a plan document as jobs stored it before sub-partitions (no such fields) and day pages
    # (the date since which day shards were by customer)
    old = {**simulation.plan(REQUEST, default_policy(), now).as_json(), "sharded_since": "2026-12-02"}
    del old["sub_partitions"], old["logged_events"]
    # When its 16 partitions run, then it answers as the synchronous simulation
    parts = [simulation.run_partition(old, p, reader).as_json() for p in range(16)]
    answer = simulation.merge(old, parts)
    assert without_timing(answer) == without_timing(simulation.simulate_window(REQUEST, default_policy(), now, reader))


def test_a_job_over_a_large_window_runs_more_partitions_and_answers_as_the_unsplit_simulation(
    aws: Any, log: bench.Log, runner: SimulationRunner
) -> None:
    # Given the stats table counts 20 million events in the job's window (the log itself is small)
    count_days(aws, {window_days(log)[1]: 20_000_000})
    status, synchronous = call("POST", "/policy/simulate", REQUEST)
    assert status == 200 and synchronous["events"] == len(log.items)
    # When the job is started and its state machine runs
    status, started = call("POST", "/policy/simulations", REQUEST)
    assert status == 202
    (run,) = runner.run_pending()
    # Then the plan split each day shard in 2: 32 partitions, each replayed once as a Map item
    assert run.status == "SUCCEEDED", run.cause
    assert run.invocations == {"SimulationJobFunction": 2, "SimulationPartitionFunction": 32}
    job = wiring.simulation_jobs().get(started["job_id"])
    assert job is not None
    assert (job.plan["sub_partitions"], job.plan["logged_events"], job.partitions) == (2, 20_000_000, 32)
    recorded = wiring.simulation_jobs().partition_results(started["job_id"])
    assert sorted(p for r in recorded for p in r["partitions"]) == list(range(32))
    # And the job says so, and answers exactly what the unsplit synchronous simulation answers
    status, done = call("GET", started["status_url"])
    assert done["progress"] == {"partitions_done": 32, "partitions": 32, "events_replayed": len(log.items)}
    assert without_timing(done["result"]) == without_timing(synchronous)
    # And its estimate comes from the sample partition, 1/32 of the customers
    assert done["estimate"]["estimate"]["share_of_customers"] == 1 / 32


def test_the_plan_step_sizes_once_and_its_items_are_the_new_partition_ids(aws: Any, log: bench.Log) -> None:
    from functions.simulation_job.app import handler as job_step

    # Given 30 days of 1 million events a day counted in the stats table, and a 30-day job
    end = (log.end + timedelta(minutes=1)).date()
    count_days(aws, {end - timedelta(days=n): 1_000_000 for n in range(31)})
    _, started = call("POST", "/policy/simulations", {**REQUEST, "days": 30})
    # When the state machine's plan step runs
    planned = job_step({"step": "plan", "job_id": started["job_id"]}, LambdaContext("simulation-job"))
    # Then the Map's items are 32 partition ids, the job's plan says why, and its progress counts them
    assert planned["partitions"] == list(range(32))
    assert (planned["plan"]["sub_partitions"], planned["plan"]["logged_events"]) == (2, 31_000_000)
    assert call("GET", started["status_url"])[1]["progress"]["partitions"] == 32
    # And a repeated plan step (a retry) keeps the first sizing, whatever was counted since
    count_days(aws, {end: 50_000_000}, first="2")
    again = job_step({"step": "plan", "job_id": started["job_id"]}, LambdaContext("simulation-job"))
    assert again["partitions"] == list(range(32)) and again["plan"] == planned["plan"]
