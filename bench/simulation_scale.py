"""Part 4, continued: a simulation job's partitions, one at a time and side by side, and what the
measured rates mean for the largest contact centre the issue names (30 days of 1 million events a
day), partitioned as the job's plan partitions that window (sub-partitions of each day shard).

Each partition is shared.usecases.simulation.run_partitions over one customer partition, exactly
the work the SimulationPartitionFunction does (ItemsReader answers the same reads from memory, so
the figure is the function's own work: the DynamoDB reads are priced and timed apart, below).
Every partition reads every day page of the window (and keeps its customers' rows): that part of
its work grows with the whole window, not with its share, so it is measured apart (`row_seconds`:
parsing and filtering one listed decision) and added per row of the window at scale.
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
from dataclasses import dataclass, field
from typing import Any

from shared.adapters.log_replay import ItemsReader
from shared.usecases import simulation

# The arithmetic's assumptions, said where they are used (README "Simulation at scale").
EVENTS_PER_DAY = 1_000_000
DAYS = 30
# The partition function as template.yaml deploys it (the plan sizes partitions to it; a test holds
# them equal): 1,769 MB is one full vCPU, so the rate measured here on one core applies.
LAMBDA_MEMORY_MB = simulation.PARTITION_MEMORY_MB
LAMBDA_TIMEOUT_SECONDS = simulation.PARTITION_TIMEOUT_SECONDS  # a partition function's hard limit
MAP_CONCURRENCY = 64  # the Distributed Map's MaxConcurrency: template.yaml's SimulationMaxConcurrency default
QUERY_MS = 10.0  # a by-customer Query or a BatchGetItem round trip from Lambda, ASSUMED (single-digit ms)
PAGE_MS = 100.0  # a 1 MB day-page Query page, ASSUMED generous, as the bench's verdicts assume
EVENTS_PER_CUSTOMER = 3  # as the bench's log: ~3 events per customer per month
SPLIT = 2  # sub-partitions per shard of the measured split plan: what 30 x 1 M needs
MEMORY_FLAG = 0.8  # the bench flags a partition holding more than this share of its function's memory
# A day's rows as DayPages.rows returns them (Row objects): ~340 bytes a row at its peak
# (tracemalloc over rows() of 100,000 rows in pages of 58, 2026-12-01). A partition keeps only its
# own customers' rows (the others are dropped as each page is parsed, before a Row is built), and
# holds DAY_THREADS days of them at once, besides its decoded decisions.
ROW_OBJECT_BYTES = 340

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
    # The same log planned with each shard split in SPLIT sub-partitions, each partition alone: a
    # sub-partition reads its whole shard and drops the other customers, which costs it work.
    split_sub_partitions: int = 0
    split_seconds: list[float] = field(default_factory=list)
    split_events: list[int] = field(default_factory=list)
    # One listed decision of a day page, parsed and filtered (in memory): on this log's pages (the
    # stream's 5 s batches of a quiet log: a decision or two a page), and on the same rows laid out
    # as EVENTS_PER_DAY's batches (busy_rows_per_page a page), what the arithmetic at scale uses.
    row_seconds: float = 0.0
    busy_row_seconds: float = 0.0
    busy_rows_per_page: float = 0.0
    row_bytes: float = 0.0  # one listed decision's share of a busy page (its row, compressed as stored)

    @property
    def per_partition_events_per_second(self) -> float:
        return statistics.median(e / s for e, s in zip(self.alone_events, self.alone_seconds, strict=True) if s)

    @property
    def replay_events_per_second(self) -> float:
        """A partition's rate without its day-page reading (every partition parsed all the pages)."""
        pages = self.events * self.row_seconds
        return statistics.median(
            e / (s - pages) for e, s in zip(self.alone_events, self.alone_seconds, strict=True) if s > pages
        )

    @property
    def split_events_per_second(self) -> float | None:
        pairs = [e / s for e, s in zip(self.split_events, self.split_seconds, strict=True) if s]
        return statistics.median(pairs) if pairs else None

    @property
    def serial_seconds(self) -> float:
        return sum(self.alone_seconds)

    @property
    def speed_up(self) -> float:
        return self.serial_seconds / self.pool_seconds if self.pool_seconds else 0.0

    def at_scale(self, item_bytes: float, mb_per_event: float, prices: Any) -> dict[str, Any]:
        """30 days of 1 million events a day as a job on Lambda, from this run's rates, partitioned
        as the job's plan would partition it (shared.usecases.simulation.sized, from the window's
        daily totals): each day shard split into sub-partitions so that no partition holds more
        than max_events_per_partition()."""
        from shared.adapters import log_entries
        from shared.adapters.log_replay import DAY_THREADS, THREADS

        events = EVENTS_PER_DAY * DAYS
        customers = events // EVENTS_PER_CUSTOMER
        subs = simulation.sub_partitions_for(events)
        partitions = simulation.PARTITIONS * subs
        per_partition = events / partitions
        # The replay of its own events, plus every row of the window's day pages parsed and filtered.
        rate = self.replay_events_per_second
        page_seconds = events * self.busy_row_seconds
        work_seconds = per_partition / rate + page_seconds
        # Every partition reads every day page (~row_bytes a decision) on DAY_THREADS threads, and
        # its own entries (BatchGetItem, 100 a request) and customers (a Query each) on THREADS.
        page_queries = events * self.row_bytes / 1_000_000
        own_requests = per_partition / log_entries.BATCH_KEYS + customers / partitions
        read_seconds = (own_requests * QUERY_MS / THREADS + page_queries * PAGE_MS / DAY_THREADS) / 1000
        partition_seconds = work_seconds + read_seconds
        waves = -(-partitions // MAP_CONCURRENCY)
        gb_seconds = partitions * partition_seconds * LAMBDA_MEMORY_MB / 1024
        # Reads, eventually consistent: a Query 0.5 RRU per 4 KB of its items (the day pages, read
        # by every partition), BatchGetItem 0.5 RRU per entry per 4 KB started (each entry once).
        page_rru = events * self.row_bytes / 4096 * 0.5 * partitions
        entry_rru = events * 0.5 * -(-item_bytes // 4096)
        rru = customers * 0.5 + page_rru + entry_rru
        cost = {
            "lambda_duration_usd": gb_seconds * prices.lambda_gb_second,
            "dynamodb_reads_usd": rru * prices.dynamodb_rru_per_million / 1e6,
            "step_functions_usd": (partitions + 6) * 0.000025,  # state transitions, Standard, list price
        }
        memory_mb = per_partition * mb_per_event  # measured bytes per decoded decision x events held
        share = memory_mb * 1e6 / (LAMBDA_MEMORY_MB * 2**20)
        day_rows_mb = EVENTS_PER_DAY / partitions * ROW_OBJECT_BYTES * DAY_THREADS / 1e6
        return {
            "events": events,
            "customers": customers,
            "partition_memory_mb": memory_mb,
            "partition_memory_share": share,
            "planned_memory_share": simulation.MEMORY_SHARE,
            "fits_lambda_memory": share <= MEMORY_FLAG,
            "day_rows_mb_held": day_rows_mb,
            "partition_memory_share_with_day_rows": (memory_mb + day_rows_mb) * 1e6 / (LAMBDA_MEMORY_MB * 2**20),
            "partitions": partitions,
            "sub_partitions": subs,
            "max_events_per_partition": simulation.max_events_per_partition(),
            "events_per_partition": per_partition,
            "events_per_second_per_partition": rate,
            "partition_page_seconds": page_seconds,
            "partition_function_seconds": work_seconds,
            "partition_read_seconds_assumed": read_seconds,
            "partition_seconds": partition_seconds,
            "fits_lambda_timeout": partition_seconds <= LAMBDA_TIMEOUT_SECONDS,
            "waves": waves,
            "wall_seconds": waves * partition_seconds,
            "day_page_read_multiplier": partitions,
            "page_row_bytes": self.row_bytes,
            "page_row_seconds": self.busy_row_seconds,
            "page_rows_per_page": self.busy_rows_per_page,
            "cost_usd": {**cost, "total": sum(cost.values())},
            "assumptions": {
                "lambda_memory_mb": LAMBDA_MEMORY_MB,
                "map_concurrency": MAP_CONCURRENCY,
                "query_ms": QUERY_MS,
                "page_ms": PAGE_MS,
                "reader_threads": THREADS,
                "day_page_threads": DAY_THREADS,
                "events_per_customer": EVENTS_PER_CUSTOMER,
            },
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "partitions": self.partitions,
            "workers": self.workers,
            "events": self.events,
            "per_partition_events_per_second": self.per_partition_events_per_second,
            "replay_events_per_second_without_pages": self.replay_events_per_second,
            "page_row_microseconds": self.row_seconds * 1e6,
            "page_row_microseconds_busy_layout": self.busy_row_seconds * 1e6,
            "busy_layout_rows_per_page": self.busy_rows_per_page,
            "page_row_bytes": self.row_bytes,
            "partition_seconds_alone": self.alone_seconds,
            "serial_seconds": self.serial_seconds,
            "pool_seconds": self.pool_seconds,
            "scale_out": self.speed_up,
            "scale_out_ideal": float(self.workers),
            "split": {
                "sub_partitions": self.split_sub_partitions,
                "partitions": len(self.split_events),
                "per_partition_events_per_second": self.split_events_per_second,
                "ratio_to_unsplit": (self.split_events_per_second or 0) / self.per_partition_events_per_second,
            },
        }


def _rows(reader: ItemsReader, job: simulation.JobPlan) -> float:
    """Seconds to parse and filter one listed decision of the window's day pages as `reader` lays
    them out (every day read, one partition's customers kept, best of 3)."""
    from shared.adapters.log_replay import day_reads, partition_of

    reads = day_reads(job.window_start, job.window_end, [simulation.SAMPLE_PARTITION])
    best, rows = float("inf"), 0
    for _ in range(3):
        started = time.perf_counter()
        listed = [r for one in reads for r in reader.pages.rows(one.day, one.start, one.end)]
        kept = [r.decision_id for r in listed if partition_of(r.customer_id) == simulation.SAMPLE_PARTITION]
        best, rows = min(best, time.perf_counter() - started), len(listed)
        del kept
    return best / rows if rows else 0.0


def _busy_layout(items: list[dict[str, Any]], job: simulation.JobPlan) -> tuple[float, float, float]:
    """The day pages of these items laid out as EVENTS_PER_DAY's would be (the stream's 5 s batch
    stretched so a batch holds as many decisions as at that rate): seconds per row read, the
    bytes of a row, and the rows a page holds."""
    from shared.adapters.day_pages import ROWS, rows_of_page
    from shared.adapters.log_replay import STREAM_BATCH, stream_pages

    per_day = len(items) / max(1, (job.window_end - job.window_start).days)
    batch = STREAM_BATCH * max(1.0, EVENTS_PER_DAY / max(1.0, per_day))
    busy = stream_pages(items, "memory", batch)
    rows = sum(len(rows_of_page(page)) for page in busy)
    sizes = sum(len(page[ROWS]["B"]) for page in busy)  # as stored (compressed): what reads are billed on
    return _rows(ItemsReader(items, batch), job), sizes / rows if rows else 0.0, rows / len(busy) if busy else 0.0


def measure(items: list[dict[str, Any]], job: simulation.JobPlan, workers: int = 2) -> ScaleOut:
    plan = job.as_json()
    _start(items)
    assert _READER is not None
    row_seconds = _rows(_READER, job)
    busy_row_seconds, row_bytes, rows_per_page = _busy_layout(items, job)
    alone: list[tuple[int, int, float]] = [_partition(plan, p) for p in range(job.partitions)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start, initargs=(items,)) as pool:
        list(pool.map(_ready, range(2 * workers)))
        started = time.perf_counter()
        done = list(pool.map(_partition, [plan] * job.partitions, range(job.partitions)))
        pool_seconds = time.perf_counter() - started
    if sorted(e for _, e, _ in done) != sorted(e for _, e, _ in alone):
        raise RuntimeError("the pool's partitions replayed other events than the partitions alone")
    events = sum(e for _, e, _ in alone)
    split = simulation.sized(job, events, max(1, -(-events // (simulation.PARTITIONS * SPLIT))))
    split_plan = split.as_json()
    halves = [_partition(split_plan, p) for p in range(split.partitions)]
    if sum(e for _, e, _ in halves) != events:
        raise RuntimeError("the sub-partitions replayed other events than the partitions")
    return ScaleOut(
        partitions=job.partitions,
        workers=workers,
        events=events,
        alone_seconds=[s for _, _, s in alone],
        alone_events=[e for _, e, _ in alone],
        pool_seconds=pool_seconds,
        split_sub_partitions=split.sub_partitions,
        split_seconds=[s for _, _, s in halves],
        split_events=[e for _, e, _ in halves],
        row_seconds=row_seconds,
        row_bytes=row_bytes,
        busy_row_seconds=busy_row_seconds,
        busy_rows_per_page=rows_per_page,
    )
