"""Issue 12 goal 6: the local stack's rate is flat in the size of its log.

Exactly what a user runs, in two processes: `governor local --no-replay --clock event` (the one
emulator, infra.local.emulator, with its speed-ups) and `governor replay FILE --url ...` sending
`events` generated InteractionClosed details (about events/4 customers, a few much busier than the
rest, closed over eight weeks, in time order). Nothing is added to the stack to watch it: the
decide function's own "decided" log lines (`--verbose` sends them to the stack's stdout, here a
temporary file) carry each decision's wall-clock time, so no probe competes with the replay.

The rate over the n-th event is the number of decisions in a window of WINDOW events around the
n-th decision divided by the wall time between the window's first and last decision; the figure
quoted is rate(events-th) / rate(1,000th) under `local_replay_flatness` (goal: >= 0.8).

    .venv/bin/python -m bench.replay_flatness [--events 10000]
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import workload

ROOT = Path(__file__).resolve().parents[1]
ANCHOR = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday: periods start whole weeks after it
DAYS = 56
EVENTS_PER_CUSTOMER = 4
EARLY = 1_000  # the rate the late one is compared with
WINDOW = 500  # decisions per rate window: ~10 s of work, long enough to smooth batching
GOAL = 0.8
MIN_DECIDED = 0.99  # a few records left in a dead-letter queue do not change a rate; more is a failure to look at
STOP_SECONDS = 20.0  # a stack that does not stop in this long after SIGINT is killed


def period_start(now: datetime, days: int = DAYS) -> datetime:
    """The latest ANCHOR + whole weeks such that the period ends two days ago (no event in the future)."""
    latest = now - timedelta(days=days + 2)
    return ANCHOR + timedelta(weeks=(latest - ANCHOR) // timedelta(weeks=1))


def make_events(events: int, start: datetime, days: int = DAYS, seed: int = 29) -> list[dict[str, Any]]:
    """Details for `events` interactions of ~events/4 customers, closed at random over `days`, in time order."""
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
        found.append(
            (closed_at, workload.detail(rng, f"rf-{n}", f"rf-cust-{customer:06d}", closed_at, zones[customer]))
        )
    found.sort(key=lambda pair: pair[0])
    return [d for _, d in found]


# A "decided" line written at the same time as another thread's may share its line: read it anyway.
DECIDED = re.compile(r'"message":\s*"decided",\s*"timestamp":\s*"([^"]+)"[^{}]*?"event_id":\s*"([^"]+)"')


def decided_times(log: Path) -> list[float]:
    """Wall-clock seconds of each event's first "decided" line, in order. A record retried after its
    decision was committed logs "decided" again (as a duplicate): the first line is when it was decided."""
    first: dict[str, float] = {}
    with log.open(errors="replace") as lines:
        for line in lines:
            if '"decided"' not in line:
                continue
            try:
                entries = [json.loads(line)]
                found = [(e["timestamp"], e["event_id"]) for e in entries if e.get("message") == "decided"]
            except (ValueError, KeyError, AttributeError):
                found = DECIDED.findall(line)
            for stamp, event_id in found:
                moment = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f%z").timestamp()
                first.setdefault(str(event_id), moment)
    return sorted(first.values())


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuWatch(threading.Thread):
    """Samples a process's CPU time with the wall clock, from outside it (reading /proc costs the
    watched process nothing): on a shared machine, CPU seconds per event say whether the stack does
    more work per event as its log grows, whatever else the machine runs."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        super().__init__(name="cpu-watch", daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, float]] = []  # (epoch seconds, CPU seconds)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            with contextlib.suppress(OSError, IndexError, ValueError):
                self.samples.append((time.time(), cpu_seconds(self.pid)))
            self.stopping.wait(self.every)

    def at(self, moment: float) -> float:
        """The CPU time at an epoch moment, interpolated between the samples around it."""
        samples = self.samples
        low, high = 0, len(samples) - 1
        if not samples or moment <= samples[0][0]:
            return samples[0][1] if samples else 0.0
        if moment >= samples[-1][0]:
            return samples[-1][1]
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if samples[middle][0] <= moment else (low, middle)
        (t0, c0), (t1, c1) = samples[low], samples[high]
        return c0 + (c1 - c0) * (moment - t0) / (t1 - t0) if t1 > t0 else c0


def rate_around(times: list[float], nth: int, window: int = WINDOW, cpu: CpuWatch | None = None) -> dict[str, Any]:
    """Decisions per second over `window` decisions centred on the nth (1-based), kept inside the
    run; with `cpu`, also decisions per CPU second of the stack's process over the same span."""
    last = min(len(times), max(window + 1, nth + window // 2))
    first = max(1, last - window)
    seconds = times[last - 1] - times[first - 1]
    found: dict[str, Any] = {
        "around": nth,
        "from": first,
        "to": last,
        "seconds": seconds,
        "events_per_second": (last - first) / seconds if seconds > 0 else 0.0,
    }
    if cpu is not None:
        spent = cpu.at(times[last - 1]) - cpu.at(times[first - 1])
        found["cpu_seconds"] = spent
        found["events_per_cpu_second"] = (last - first) / spent if spent > 0 else 0.0
    return found


def _get(url: str, timeout: float = 5) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


@contextlib.contextmanager
def local_stack(folder: Path, timeout: float = 120) -> Iterator[tuple[str, Path, int]]:
    """`governor local --no-replay --ephemeral --clock event --verbose` on a free port, its state dir in
    `folder`; yields its URL, its stdout file and its process id."""
    from infra.local.emulator import free_port

    port = free_port()
    out = folder / "governor-local.out"
    # The log file is read while the stack runs. Its own state folder and --ephemeral: a stack that
    # restored the user's kept state (or an earlier run's, with the same event ids) would measure that.
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "GOVERNOR_STATE_DIR": str(folder / "state")}
    with out.open("w") as stdout, (folder / "governor-local.err").open("w") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cli",
                "local",
                "--no-replay",
                "--ephemeral",
                "--clock",
                "event",
                "--verbose",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=environment,
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"governor local exited with {process.returncode}: {_tail(folder)}")
            with contextlib.suppress(OSError, ValueError):
                if _get(f"{url}/health").get("status") == "ok":
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"governor local did not answer /health within {timeout:.0f} s: {_tail(folder)}")
            time.sleep(0.2)
        yield url, out, process.pid
    finally:
        _stop(process)


def _tail(folder: Path) -> str:
    return (folder / "governor-local.err").read_text(errors="replace")[-2000:]


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


PROGRESS = re.compile(r"(\d+)/(\d+)$")


def replay(sample: Path, url: str, events: int) -> tuple[int, str, str, float | None]:
    """`governor replay FILE --url URL`: its exit code, stdout, stderr, and when (epoch seconds) its
    progress bar showed every event posted (None if it never did)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "replay", str(sample), "--url", url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    posted: list[float] = []
    said: list[bytes] = []

    def follow(stream: Any) -> None:
        pending = ""
        while chunk := os.read(stream.fileno(), 4096):
            said.append(chunk)
            pending += chunk.decode(errors="replace")
            *segments, pending = re.split(r"[\r\n]", pending)
            for segment in segments:
                match = PROGRESS.search(segment.strip())
                if not posted and match and int(match.group(1)) == int(match.group(2)) == events:
                    posted.append(time.time())

    follower = threading.Thread(target=follow, args=(process.stderr,), daemon=True)
    follower.start()
    summary = process.stdout.read().decode(errors="replace")
    returncode = process.wait()
    follower.join(timeout=10)
    return returncode, summary, b"".join(said).decode(errors="replace"), posted[0] if posted else None


def measure(events: int = 10_000, *, early: int = EARLY, window: int = WINDOW, seed: int = 29) -> dict[str, Any]:
    """Replays `events` through `governor replay` against `governor local`; the rate over the
    `early`-th and the last event, and their ratio under `local_replay_flatness`."""
    if events <= early:
        raise ValueError(f"events ({events}) must be more than the early event ({early})")
    started = time.perf_counter()
    details = make_events(events, period_start(datetime.now(UTC)), seed=seed)
    folder = Path(tempfile.mkdtemp(prefix="bench-replay-flatness-"))  # kept when something goes wrong
    sample = folder / "events.ndjson"
    sample.write_text("".join(json.dumps(d) + "\n" for d in details))
    with local_stack(folder) as (url, log, pid):
        watch = CpuWatch(pid)
        watch.start()
        replayed = time.perf_counter()
        returncode, summary, errors, posted_at = replay(sample, url, events)
        replay_seconds = time.perf_counter() - replayed
        watch.stopping.set()
        watch.join()
    if returncode != 0:
        raise RuntimeError(f"governor replay exited with {returncode} (see {folder}): {errors[-2000:]}")
    times = decided_times(log)
    if len(times) < MIN_DECIDED * events:
        raise RuntimeError(f"only {len(times)} of {events} events were logged as decided: see {folder}")
    shutil.rmtree(folder, ignore_errors=True)
    decided = len(times)  # the late rate is over the last decision logged
    first, last = rate_around(times, early, window, watch), rate_around(times, decided, window, watch)
    ratio = last["events_per_second"] / first["events_per_second"] if first["events_per_second"] else 0.0
    cpu_ratio = (
        last["events_per_cpu_second"] / first["events_per_cpu_second"] if first["events_per_cpu_second"] else 0.0
    )
    # The early window overlaps the posting (ingest shares the stack's CPU): a stricter baseline is
    # the first window decided after every event was posted.
    posted_by = bisect.bisect_right(times, posted_at) if posted_at is not None else None
    after_ingest = None
    if posted_by is not None and posted_by + 2 * window < decided:
        after_ingest = rate_around(times, posted_by + 1 + window // 2, window, watch)
    checkpoints = sorted({early, *range(2_000, decided, 2_000), decided})
    return {
        "events": events,
        "events_logged_as_decided": decided,
        "window": window,
        "early": first,
        "late": last,
        "local_replay_flatness": ratio,
        "goal": GOAL,
        "meets_goal": ratio >= GOAL,
        "local_replay_flatness_cpu": cpu_ratio,
        "decided_when_all_posted": posted_by,
        "after_ingest": after_ingest,
        "local_replay_flatness_after_ingest": (
            last["events_per_second"] / after_ingest["events_per_second"]
            if after_ingest and after_ingest["events_per_second"]
            else None
        ),
        "profile": [rate_around(times, n, window, watch) for n in checkpoints],
        "decide_seconds": times[-1] - times[0],
        "replay_seconds": replay_seconds,
        "replay_summary": summary.splitlines()[0] if summary else "",
        "seconds_total": time.perf_counter() - started,
        "notes": [
            "`governor local --no-replay --clock event --verbose` and `governor replay FILE --url` in processes of",
            "  their own, as a user runs them; each rate is timed from the decide function's own log lines.",
            f"rate over the n-th event: {window} decisions around the n-th / the wall time they took.",
            "local_replay_flatness_cpu: the same ratio in events per CPU second of the stack's process (read",
            "  from /proc): the work per event, whatever else a shared machine runs meanwhile.",
            "local_replay_flatness_after_ingest: the late rate over the first window decided after the replay had",
            "  posted every event (the early window shares the stack with ingestion and a deep queue).",
        ],
    }


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--events", type=int, default=10_000)
    options.add_argument("--early", type=int, default=EARLY)
    options.add_argument("--window", type=int, default=WINDOW)
    args = options.parse_args()
    result = measure(args.events, early=args.early, window=args.window)
    for point in result["profile"]:
        print(
            f"  around event {point['around']:>6}: {point['events_per_second']:6.1f} events/s, "
            f"{point.get('events_per_cpu_second', 0.0):6.1f} events per CPU second"
        )
    after = result["local_replay_flatness_after_ingest"]
    print(
        f"local_replay_flatness {result['local_replay_flatness']:.2f} (goal >= {GOAL}); in CPU time "
        f"{result['local_replay_flatness_cpu']:.2f}; against the first window after ingest "
        + (f"{after:.2f}" if after is not None else "n/a")
        + f"; {result['events']} events in {result['replay_seconds']:.0f} s"
    )
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
