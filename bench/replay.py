"""`make bench-replay`: `governor replay --in-process` of a long generated history, and whether the
local stack keeps its pace as the log grows (it must: no real AWS service slows with its size).

Generated traffic: infra.sample_events' four realistic weeks, one seed after another, each seed's
weeks placed four weeks before the previous one's, in time order (N events, about 400 a seed).
Replayed exactly as `governor replay FILE --in-process` does (the same stack, the event clock,
POST /events in chunks of 100 as fast as they are accepted, then wait until drained), while a
sampler notes when each event was posted and decided. Reported: events/s posted and decided over
the first and the last WINDOW events, and last ÷ first (1.0 = flat; moto's whole-table copies made
it fall to ~0.3 by 3,600 events). Writes bench/results/replay.json.

    python -m bench.replay [--events 20000] [--window 2000]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from infra import sample_events

RESULTS = Path(__file__).resolve().parent / "results" / "replay.json"
SAMPLE_SECONDS = 0.05


def generated(events: int) -> list[dict[str, Any]]:
    """`events` details from successive seeds of the sample generator, each seed four weeks earlier."""
    found: list[tuple[datetime, dict[str, Any]]] = []
    for k in range(10_000):
        shift = timedelta(weeks=4 * k)
        for detail in sample_events.generate(sample_events.SEED + k):
            closed = datetime.fromisoformat(detail["closed_at"].replace("Z", "+00:00"))
            moved = {**detail, "closed_at": (closed - shift).isoformat()}
            found.append((closed - shift, moved))
        if len(found) >= events:
            break
    found.sort(key=lambda pair: (pair[0], pair[1]["event_id"]))
    return [d for _, d in found[-events:]]


@dataclass(frozen=True)
class Window:
    events: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class ReplayResult:
    events: int
    accepted: int
    decisions: int
    drained: bool
    seconds: float
    window: int
    posted_first: Window
    posted_last: Window
    decided_first: Window
    decided_last: Window
    failed_records: int
    peak_rss_mb: float

    @property
    def decided_ratio(self) -> float:
        return self.decided_last.per_second / self.decided_first.per_second if self.decided_first.per_second else 0.0

    @property
    def posted_ratio(self) -> float:
        return self.posted_last.per_second / self.posted_first.per_second if self.posted_first.per_second else 0.0

    def as_json(self) -> dict[str, Any]:
        found = asdict(self)
        for name in ("posted_first", "posted_last", "decided_first", "decided_last"):
            found[name]["per_second"] = getattr(self, name).per_second
        found["ratios_last_to_first"] = {"decided": self.decided_ratio, "posted": self.posted_ratio}
        return found


class Timeline:
    """(seconds since start, count) each time a count moves: posted by the replay, decided by the pollers."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.points: list[tuple[float, int]] = [(0.0, 0)]

    def note(self, count: int) -> None:
        if count != self.points[-1][1]:
            self.points.append((time.perf_counter() - self.started, count))

    def when(self, count: int) -> float:
        """When the count first reached `count`."""
        return next((t for t, n in self.points if n >= count), self.points[-1][0])

    def window(self, first: int, last: int) -> Window:
        return Window(last - first, self.when(last) - self.when(first))


def measure(events: int = 20_000, window: int = 2_000, drain_timeout: float = 120.0) -> ReplayResult:
    from cli import replay
    from infra.local.stack import running

    details = generated(events)
    posted, decided = Timeline(), Timeline()
    with (
        tempfile.TemporaryDirectory(prefix="bench-replay-") as folder,
        running(port=0, clock="event", log_to=Path(folder) / "functions.log") as stack,
    ):
        stopping = threading.Event()
        started = time.perf_counter()
        posted.started = decided.started = started

        def sample() -> None:
            while not stopping.is_set():
                decided.note(sum(p.records - p.failures for p in stack.pollers))
                time.sleep(SAMPLE_SECONDS)

        sampler = threading.Thread(target=sample, name="bench-sampler", daemon=True)
        sampler.start()
        try:
            report = replay.send(stack.url, details, out=io.StringIO(), timeout=drain_timeout, on_posted=posted.note)
        finally:
            stopping.set()
            sampler.join()
        decided.note(sum(p.records - p.failures for p in stack.pollers))
        failed = sum(p.failures for p in stack.pollers)
        seconds = time.perf_counter() - started
    accepted = report.accepted
    last = min(window, accepted)
    return ReplayResult(
        events=events,
        accepted=accepted,
        decisions=len(report.decisions),
        drained=report.drained,
        seconds=seconds,
        window=window,
        posted_first=posted.window(0, last),
        posted_last=posted.window(accepted - last, accepted),
        decided_first=decided.window(0, last),
        decided_last=decided.window(accepted - last, accepted),
        failed_records=failed,
        peak_rss_mb=_peak_rss_mb(),
    )


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def table(r: ReplayResult) -> list[str]:
    label = 52
    w = f"{r.window:,}"
    return [
        f"Replay through the local stack (`governor replay --in-process`, event clock): {r.events:,} generated events",
        f"   {'accepted / decisions logged / drained':<{label}}{r.accepted:>10,} / {r.decisions:,} / "
        f"{'yes' if r.drained else 'NO'}   in {r.seconds:,.0f} s, {r.failed_records} failed records",
        f"   {f'decided, first {w} events':<{label}}{r.decided_first.per_second:>10.1f} events/s",
        f"   {f'decided, last {w} events':<{label}}{r.decided_last.per_second:>10.1f} events/s",
        f"   {'decided: last ÷ first (1.0 = flat)':<{label}}{r.decided_ratio:>10.2f}   <- the figure to quote",
        f"   {f'posted (POST /events), first {w} events':<{label}}{r.posted_first.per_second:>10.1f} events/s",
        f"   {f'posted (POST /events), last {w} events':<{label}}{r.posted_last.per_second:>10.1f} events/s",
        f"   {'posted: last ÷ first':<{label}}{r.posted_ratio:>10.2f}",
        f"   {'peak memory of the process':<{label}}{r.peak_rss_mb:>10,.0f} MB",
        "   posting runs as fast as /events accepts: the first window's decisions share the CPU with it.",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=2_000, help="events in the first and last windows")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = measure(args.events, args.window)
    for line in table(result):
        print(line)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result.as_json(), indent=2) + "\n")
    print(f"wrote {args.output}")
    return (
        0
        if result.drained
        and result.decisions == len({(d["customer_id"], d["event_id"]) for d in generated(args.events)})
        else 1
    )


if __name__ == "__main__":
    sys.exit(main())
