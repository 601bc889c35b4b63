"""Part 4, continued: a simulation job's partitions, one at a time and side by side, and what the
measured rates mean for the largest contact centre the issue names (30 days of 1 million events a day).

Each partition is shared.usecases.simulation.run_partitions over one customer partition, exactly
the work the SimulationPartitionFunction does (ItemsReader answers the same Queries from memory, so
the figure is the function's own work: the DynamoDB reads are priced and timed apart, below).
- per partition: each of the plan's partitions run alone in this process; events/s of each.
- scale-out: the same partitions in a process pool of `workers` processes (fork: the log is shared,
  not copied), wall time of the whole set ÷ the one-at-a-time total. On 2 cores the ideal is 2.0;
  on Lambda each partition is its own function instance, so partitions do not share a core.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from shared.adapters.log_replay import ItemsReader
from shared.usecases import simulation

# The arithmetic's assumptions, said where they are used (README "Simulation at scale").
EVENTS_PER_DAY = 1_000_000
DAYS = 30
LAMBDA_MEMORY_MB = 1769  # one full vCPU: the rate measured here on one core applies
LAMBDA_TIMEOUT_SECONDS = 900  # a partition function's hard limit
MAP_CONCURRENCY = 16  # the Distributed Map's MaxConcurrency in template.yaml: every partition at once
QUERY_MS = 10.0  # a by-customer Query round trip from Lambda, ASSUMED (DynamoDB's single-digit ms)
PAGE_MS = 100.0  # a 1 MB day-shard Query page, ASSUMED generous, as the bench's verdicts assume
EVENTS_PER_CUSTOMER = 3  # as the bench's log: ~3 events per customer per month

_READER: ItemsReader | None = None


def _start(items: list[dict[str, Any]]) -> None:
    """Pool initializer: the log's index built once per worker, outside the timed work."""
    global _READER
    _READER = ItemsReader(items)


def _ready(_: int) -> int:
    time.sleep(0.2)  # holds its worker so every worker starts (and indexes) before the timing
    return 0


def _partition(job: dict[str, Any], index: int) -> tuple[int, int, float]:
    assert _READER is not None
    started = time.perf_counter()
    result = simulation.run_partitions(job, [index], _READER, squares=False)
    return index, result.replayed.events, time.perf_counter() - started


@dataclass
class ScaleOut:
    partitions: int
    workers: int
    events: int
    alone_seconds: list[float]  # each partition alone, in this process
    alone_events: list[int]
    pool_seconds: float  # all partitions in the pool, wall time

    @property
    def per_partition_events_per_second(self) -> float:
        return statistics.median(e / s for e, s in zip(self.alone_events, self.alone_seconds, strict=True) if s)

    @property
    def serial_seconds(self) -> float:
        return sum(self.alone_seconds)

    @property
    def speed_up(self) -> float:
        return self.serial_seconds / self.pool_seconds if self.pool_seconds else 0.0

    def at_scale(self, item_bytes: float, mb_per_event: float, prices: Any) -> dict[str, Any]:
        """30 days of 1 million events a day as a job on Lambda, from this run's rates."""
        events = EVENTS_PER_DAY * DAYS
        customers = events // EVENTS_PER_CUSTOMER
        per_partition = events / self.partitions
        work_seconds = per_partition / self.per_partition_events_per_second
        items_per_page = max(1, int(1_000_000 // item_bytes))
        day_pages = events / items_per_page
        # One by-customer Query per customer (warm-up history), on the reader's threads.
        from shared.adapters.log_replay import THREADS

        read_seconds = (customers / self.partitions * QUERY_MS / THREADS + day_pages / self.partitions * PAGE_MS) / 1000
        partition_seconds = work_seconds + read_seconds
        waves = -(-self.partitions // MAP_CONCURRENCY)
        gb_seconds = self.partitions * partition_seconds * LAMBDA_MEMORY_MB / 1024
        # Reads: eventually consistent Queries, 0.5 RRU per 4 KB started; the day pages' items add up.
        rru = customers * 0.5 + events * item_bytes / 4096 * 0.5
        cost = {
            "lambda_duration_usd": gb_seconds * prices.lambda_gb_second,
            "dynamodb_reads_usd": rru * prices.dynamodb_rru_per_million / 1e6,
            "step_functions_usd": (self.partitions + 6) * 0.000025,  # state transitions, Standard, list price
        }
        memory_mb = per_partition * mb_per_event
        return {
            "events": events,
            "customers": customers,
            "partition_memory_mb": memory_mb,
            "fits_lambda_memory": memory_mb <= LAMBDA_MEMORY_MB * 0.8,
            "partitions": self.partitions,
            "events_per_partition": per_partition,
            "partition_function_seconds": work_seconds,
            "partition_read_seconds_assumed": read_seconds,
            "partition_seconds": partition_seconds,
            "fits_lambda_timeout": partition_seconds <= LAMBDA_TIMEOUT_SECONDS,
            "wall_seconds": waves * partition_seconds,
            "cost_usd": {**cost, "total": sum(cost.values())},
            "assumptions": {
                "lambda_memory_mb": LAMBDA_MEMORY_MB,
                "map_concurrency": MAP_CONCURRENCY,
                "query_ms": QUERY_MS,
                "page_ms": PAGE_MS,
                "reader_threads": THREADS,
                "events_per_customer": EVENTS_PER_CUSTOMER,
            },
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "partitions": self.partitions,
            "workers": self.workers,
            "events": self.events,
            "per_partition_events_per_second": self.per_partition_events_per_second,
            "partition_seconds_alone": self.alone_seconds,
            "serial_seconds": self.serial_seconds,
            "pool_seconds": self.pool_seconds,
            "scale_out": self.speed_up,
            "scale_out_ideal": float(self.workers),
        }


def measure(items: list[dict[str, Any]], job: simulation.JobPlan, workers: int = 2) -> ScaleOut:
    plan = job.as_json()
    _start(items)
    alone: list[tuple[int, int, float]] = [_partition(plan, p) for p in range(job.partitions)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start, initargs=(items,)) as pool:
        list(pool.map(_ready, range(2 * workers)))
        started = time.perf_counter()
        done = list(pool.map(_partition, [plan] * job.partitions, range(job.partitions)))
        pool_seconds = time.perf_counter() - started
    if sorted(e for _, e, _ in done) != sorted(e for _, e, _ in alone):
        raise RuntimeError("the pool's partitions replayed other events than the partitions alone")
    return ScaleOut(
        partitions=job.partitions,
        workers=workers,
        events=sum(e for _, e, _ in alone),
        alone_seconds=[s for _, _, s in alone],
        alone_events=[e for _, e, _ in alone],
        pool_seconds=pool_seconds,
    )
