"""EventBridge Scheduler's one-time schedules, fired locally.

moto stores schedules but never fires them (shared/MOTO-NOTES.md). This runner does what the
service would: read every `at(...)` schedule, and once it is due invoke its target function's
handler (the template's own, the same code Lambda runs) with the schedule's Input, in time order;
delete it after a run (ActionAfterCompletion DELETE); on failure retry it on the next run, and after
the schedule's RetryPolicy.MaximumRetryAttempts send its Input to its DeadLetterConfig queue.

Under the wall clock a background loop runs what is due by now. Under the event clock time is the
traffic's own: `run_due(T)` runs before anything happening at T is processed, and POST /local/advance
runs everything due by a given time. While a schedule runs under the event clock, the function's
clock reads the schedule's time (EventClock.as_of), as the deployed function would read it then.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from infra.lambda_runtime import LambdaContext

_AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")


@dataclass(frozen=True)
class Due:
    at: datetime
    name: str
    group: str
    target_arn: str
    input: str
    dead_letter_arn: str | None
    max_retries: int


@dataclass(frozen=True)
class Fired:
    due: Due
    answer: dict[str, Any] | None  # what the function returned (None: dead-lettered)


def due_time(expression: str, timezone: str | None) -> datetime | None:
    """The UTC time of a one-time `at(...)` expression; None for rate()/cron() schedules."""
    match = _AT.fullmatch(expression.strip())
    if not match:
        return None
    local = datetime.fromisoformat(match.group(1)).replace(tzinfo=ZoneInfo(timezone or "UTC"))
    return local.astimezone(UTC)


class Target(Protocol):
    """A function of the template (infra.local.stack.Function)."""

    @property
    def logical_id(self) -> str: ...
    @property
    def timeout(self) -> float: ...
    def load(self) -> Callable[[dict[str, Any], Any], Any]: ...


@dataclass
class ScheduleRunner:
    """Fires due one-time schedules through the handlers of `targets` (function ARN -> function)."""

    scheduler: Any  # a boto3 "scheduler" client
    sqs: Any
    targets: dict[str, Target]
    as_of: Callable[[datetime], Any] | None = None  # event clock: a context manager fixing "now"
    runs: int = 0
    failures: int = 0
    dead_lettered: int = 0
    last_error: str | None = None
    _attempts: Counter[str] = field(default_factory=Counter)
    _known: dict[tuple[str, str], Due | None] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def pending(self) -> list[Due]:
        """Every enabled one-time schedule, earliest first."""
        with self._lock:
            return self._pending()

    def _pending(self) -> list[Due]:
        found = []
        seen = set()
        paginator = self.scheduler.get_paginator("list_schedules")
        for page in paginator.paginate(State="ENABLED"):
            for summary in page["Schedules"]:
                key = (summary["GroupName"], summary["Name"])
                seen.add(key)
                if key in self._known:  # a schedule is never updated here: read each once
                    if self._known[key] is not None:
                        found.append(self._known[key])
                    continue
                try:
                    schedule = self.scheduler.get_schedule(Name=summary["Name"], GroupName=summary["GroupName"])
                except self.scheduler.exceptions.ResourceNotFoundException:
                    continue  # deleted meanwhile (a cancellation at decision time)
                at = due_time(schedule["ScheduleExpression"], schedule.get("ScheduleExpressionTimezone"))
                if at is None:
                    self._known[key] = None
                    continue
                target = schedule["Target"]
                self._known[key] = Due(
                    at=at,
                    name=schedule["Name"],
                    group=schedule["GroupName"],
                    target_arn=target["Arn"],
                    input=target.get("Input") or "{}",
                    dead_letter_arn=(target.get("DeadLetterConfig") or {}).get("Arn"),
                    max_retries=int((target.get("RetryPolicy") or {}).get("MaximumRetryAttempts", 185)),
                )
                found.append(self._known[key])
        self._known = {k: v for k, v in self._known.items() if k in seen}  # deleted ones may be made again
        return sorted((d for d in found if d is not None), key=lambda d: (d.at, d.name))

    def run_due(self, until: datetime) -> list[Fired]:
        """Runs, in time order, every schedule due at or before `until`; returns those that ran to
        completion (deleted), with what their function answered. Serialised: two threads never
        fire the same schedule."""
        return self.run_due_counting_failures(until)[0]

    def run_due_counting_failures(self, until: datetime) -> tuple[list[Fired], int]:
        """run_due, and how many due schedules failed (kept for a retry) in this pass."""
        with self._lock:
            done, failed = [], 0
            for due in self.pending():
                if due.at > until:
                    break
                fired = self._fire(due)
                if fired is None:
                    failed += 1
                else:
                    done.append(fired)
            return done, failed

    def _fire(self, due: Due) -> Fired | None:
        target = self.targets.get(due.target_arn)
        try:
            if target is None:  # Scheduler could not invoke it either: retried, then dead-lettered
                raise LookupError(f"no function of the template has the ARN {due.target_arn}")
            context = LambdaContext(target.logical_id, target.timeout)
            handler = target.load()
            if self.as_of is not None:
                with self.as_of(due.at):
                    answer = handler(json.loads(due.input), context)
            else:
                answer = handler(json.loads(due.input), context)
        except Exception as error:  # Scheduler retries a failed invocation, then dead-letters it
            self.failures += 1
            self.last_error = f"{due.name}: {type(error).__name__}: {error}"
            self._attempts[due.name] += 1
            if self._attempts[due.name] <= due.max_retries:
                return None
            self._dead_letter(due)
            answer = None
        self.runs += 1
        self._attempts.pop(due.name, None)
        with contextlib.suppress(self.scheduler.exceptions.ResourceNotFoundException):  # ActionAfterCompletion DELETE
            self.scheduler.delete_schedule(Name=due.name, GroupName=due.group)
        return Fired(due, answer if isinstance(answer, dict) else None)

    def _dead_letter(self, due: Due) -> None:
        self.dead_lettered += 1
        if due.dead_letter_arn:
            name = due.dead_letter_arn.rsplit(":", 1)[-1]
            url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            self.sqs.send_message(QueueUrl=url, MessageBody=due.input)


class WallScheduleLoop(threading.Thread):
    """The wall clock's Scheduler: every `every` seconds, fire what is due by now."""

    def __init__(self, runner: ScheduleRunner, every: float = 1.0) -> None:
        super().__init__(name="scheduler", daemon=True)
        self.runner = runner
        self.every = every
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.every):
            try:
                self.runner.run_due(datetime.now(UTC))
            except Exception as error:  # the emulator going away while stopping, mostly
                self.runner.last_error = f"{type(error).__name__}: {error}"
