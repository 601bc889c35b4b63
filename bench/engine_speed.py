"""Part 1: pure engine decisions per second, against pydantic validation of the same events.

Both loops run in the same process, interleaved repeat by repeat, so machine noise hits both;
the ratio engine/s ÷ validation/s is the figure to compare across machines.
"""

from __future__ import annotations

import gc
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import workload
from shared.adapters.clock import EventClock
from shared.domain.contacts import ContactLedger
from shared.domain.engine import decide
from shared.domain.events import InteractionClosed
from shared.domain.policy import default_policy

START = datetime(2026, 1, 5, tzinfo=UTC)


@dataclass(frozen=True)
class EngineResult:
    events: int
    repeats: int
    engine_runs: tuple[float, ...]  # seconds for all events, each repeat
    validation_runs: tuple[float, ...]
    actions: dict[str, int]
    ledger_sizes: dict[str, int]

    @property
    def engine_seconds(self) -> float:
        return min(self.engine_runs)

    @property
    def validation_seconds(self) -> float:
        return min(self.validation_runs)

    @property
    def engine_per_second(self) -> float:
        return self.events / self.engine_seconds

    @property
    def validation_per_second(self) -> float:
        return self.events / self.validation_seconds

    @property
    def ratio(self) -> float:
        return self.engine_per_second / self.validation_per_second

    def as_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "repeats": self.repeats,
            "engine_best_seconds": self.engine_seconds,
            "validation_best_seconds": self.validation_seconds,
            "engine_runs_seconds": list(self.engine_runs),
            "validation_runs_seconds": list(self.validation_runs),
            "gc_disabled_while_timed": True,
            "engine_decisions_per_second": self.engine_per_second,
            "validation_events_per_second": self.validation_per_second,
            "engine_microseconds_per_decision": 1e6 / self.engine_per_second,
            "validation_microseconds_per_event": 1e6 / self.validation_per_second,
            "ratio_engine_to_validation": self.ratio,
            "actions": self.actions,
            "ledger_sizes": self.ledger_sizes,
        }


def make_workload(events: int, seed: int = 7) -> tuple[list[dict[str, Any]], list[ContactLedger], list[datetime]]:
    """Event details (as they arrive), one ledger per event, and each event's decision time."""
    rng = random.Random(seed)
    clock = EventClock()
    details, ledgers, nows = [], [], []
    for n in range(events):
        customer = f"cust-{rng.randint(1, events // 3 or 1)}"
        closed_at = START + timedelta(days=rng.uniform(0, 365))
        found = workload.detail(rng, f"engine-{n}", customer, closed_at, workload.customer_zone(rng))
        now = clock.now(InteractionClosed.model_validate(found))
        details.append(found)
        ledgers.append(workload.ledger_for(rng, customer, found["interaction_id"], now))
        nows.append(now)
    return details, ledgers, nows


def _timed(run: Callable[[], None], timings: list[float]) -> None:
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()  # as timeit does: collections land on whichever loop happens to run
    try:
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    finally:
        if enabled:
            gc.enable()


def measure(events: int = 4000, repeats: int = 5, warmup: int = 1) -> EngineResult:
    details, ledgers, nows = make_workload(events)
    parsed = [InteractionClosed.model_validate(d) for d in details]
    policy = default_policy()
    jobs = list(zip(parsed, ledgers, nows, strict=True))
    validate = InteractionClosed.model_validate

    def engine() -> None:
        for event, ledger, now in jobs:
            decide(event, ledger, policy, now)

    def validation() -> None:
        for found in details:
            validate(found)

    engine_times: list[float] = []
    validation_times: list[float] = []
    for _ in range(warmup):
        engine()
        validation()
    for _ in range(repeats):  # interleaved, so both see the same machine
        _timed(engine, engine_times)
        _timed(validation, validation_times)
    actions = Counter(str(decide(e, led, policy, now).action) for e, led, now in jobs)
    sizes = Counter(_size_band(len(led.followups)) for led in ledgers)
    return EngineResult(events, repeats, tuple(engine_times), tuple(validation_times), dict(actions), dict(sizes))


def _size_band(size: int) -> str:
    if size == 0:
        return "empty"
    if size <= 3:
        return "1-3"
    if size <= 13:
        return "4-13"
    return "30+"
