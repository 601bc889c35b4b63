"""The asynchronous simulation job (POST /policy/simulations): start, progress, and the steps its
state machine runs - plan, one partition, merge, fail.

    start     the request is validated and planned at once (a bad policy or window is a 400, as for
              POST /policy/simulate), stored as a job, and its execution started, named by the job
              id. The same idempotency key with the same request answers the same job (and starts
              its execution again if it never began: a start is idempotent by name); with another
              request it is refused (409 IDEMPOTENCY_KEY_REUSED).
    plan      the state machine's first step: the job's partitions and the Map's concurrency. The
              first plan step sizes the plan to the window's events, as the stats table counted
              them: more partitions (each customer shard split by a finer customer hash) for a log
              whose shards would outgrow the partition function (simulation.sized).
    partition one partition of the plan replayed (shared.usecases.simulation.run_partition) and
              recorded once with the job's progress; the sample partition also records the
              estimate (the answer from that deterministic share of the customers, with its error).
              A partition already recorded is not replayed again.
    merge     every partition's counts merged into the answer (today's /policy/simulate answer).
    fail      the job marked failed with the error its state machine caught.

Every change of the job is one conditional write (shared.adapters.simulation_jobs): a retried step
never counts twice, and the first end of a job wins.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

from shared import faults
from shared.adapters.simulation_jobs import FAILED, RUNNING, SUCCEEDED, Job, SimulationJobs
from shared.domain.errors import IdempotencyKeyReused, InvalidInput, NotFound

if TYPE_CHECKING:
    from shared.adapters.clock import Clock
    from shared.adapters.log_replay import LogReader
    from shared.domain.policy import Policy

JOB_ID = re.compile(r"sim_[a-z2-7]{26}")
# An Idempotency-Key (or client_token): printable ASCII without spaces, as the other ids.
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/#=+-]{0,127}")
# Where a test can make a partition's invocation die (shared.faults): after its replay, before
# anything is written; and after its counts were recorded, before it answers.
PARTITION_REPLAYED = "simulation_partition_replayed"
PARTITION_RECORDED = "simulation_partition_recorded"
STATUSES = (RUNNING, SUCCEEDED, FAILED)
_ERROR_TEXT = 300  # characters of a caught error's message kept on the job


class Runs(Protocol):
    """The engine that runs a job's steps: the state machine (shared.adapters.step_functions)."""

    def start(self, name: str, given: dict[str, Any]) -> None: ...


class DailyTotals(Protocol):
    """The stats table's daily counters (shared.adapters.stats.Stats.days): `total` per day."""

    def days(self, first: date, last: date) -> list[dict[str, Any]]: ...


class IdempotencyKeyConflict(IdempotencyKeyReused):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.fields = [{"field": "Idempotency-Key", "message": "was already used for a different simulation"}]


@dataclass(frozen=True)
class Started:
    job: Job
    created: bool


def job_id_for(caller: str, key: str | None) -> str:
    """A key names one job of its caller (two callers' keys never collide); no key, a new job."""
    digest = hashlib.sha256(f"{caller}\n{key}".encode()).digest() if key else secrets.token_bytes(32)
    return "sim_" + base64.b32encode(digest).decode().lower()[:26]


def fingerprint(request: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def check_key(key: str | None, field: str = "Idempotency-Key") -> str | None:
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidInput(
            f"{field} must be 1 to 128 printable characters (letters, digits, . _ : / # = + -)",
            [{"field": field, "message": "must be 1 to 128 letters, digits or . _ : / # = + -"}],
        )
    return key


class SimulationJobService:
    def __init__(self, jobs: SimulationJobs, runs: Runs | None, clock: Clock) -> None:
        self.jobs = jobs
        self.runs = runs
        self.clock = clock

    # ---- the API --------------------------------------------------------------------------------

    def start(
        self,
        request: Mapping[str, Any],
        current: Policy,
        *,
        caller: str,
        key: str | None,
        retention_days: int,
    ) -> Started:
        from shared.usecases import simulation  # noqa: PLC0415 - the engine, only when a job is planned

        now = self.clock.now()
        wanted = {
            "policy": request.get("policy"),
            "days": request.get("days"),
            "sample_size": request.get("sample_size"),
        }
        plan = simulation.plan(wanted, current, now, max_days=retention_days, retention_days=retention_days)
        job = Job(
            job_id=job_id_for(caller, key),
            status=RUNNING,
            fingerprint=fingerprint(wanted),
            request=wanted,
            plan=plan.as_json(),
            created_at=now,
            created_by=caller,
            partitions=plan.partitions,
        )
        existing = self.jobs.create(job)
        if existing is not None:
            if existing.fingerprint != job.fingerprint:
                raise IdempotencyKeyConflict(
                    "this Idempotency-Key was already used for a different simulation; send a new key"
                )
            job = existing
        if job.status == RUNNING and job.started_at is None:
            # A repeat of a start whose execution may never have begun (the first request failed
            # after storing the job): starting the same name again is harmless.
            self._runs().start(job.job_id, {"job_id": job.job_id})
        return Started(job, created=existing is None)

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id) if JOB_ID.fullmatch(job_id) else None
        if job is None:
            raise NotFound(f"no simulation job {job_id}")
        return job

    # ---- the state machine's steps ----------------------------------------------------------------

    def plan_step(
        self,
        job_id: str,
        max_concurrency: int,
        totals: DailyTotals | None = None,
        max_events_per_partition: int | None = None,
    ) -> dict[str, Any]:
        """The Distributed Map's items: the partition ids of the plan. The first step sizes the
        plan to the window's events as the stats table counted them (one Query a day, no read of
        the log), so no partition outgrows its function; a repeated step keeps that sizing."""
        from shared.usecases import simulation  # noqa: PLC0415

        now = self.clock.now()
        job = self.jobs.get(job_id)
        if job is not None and job.status == RUNNING and job.started_at is None and totals is not None:
            planned = simulation.JobPlan.of(job.plan)
            days = totals.days(planned.window_start.date(), planned.window_end.date())
            events = sum(int(day["total"]) for day in days)
            sized = simulation.sized(planned, events, max_events_per_partition)
            job = self.jobs.start_sized(job_id, now, sized.as_json(), sized.partitions)
        else:
            job = self.jobs.mark_started(job_id, now)
        if job is None:
            raise JobNotRunning(f"simulation job {job_id} is not running")
        return {"plan": job.plan, "partitions": list(range(job.partitions)), "max_concurrency": max_concurrency}

    def partition_step(self, job_id: str, plan: Mapping[str, Any], partition: int, reader: LogReader) -> dict[str, Any]:
        from shared.usecases import simulation  # noqa: PLC0415

        job_plan = simulation.JobPlan.of(plan)
        if self.jobs.has_partition(job_id, partition):
            # Recorded by an earlier attempt that failed to answer: nothing to replay or count.
            return {"job_id": job_id, "partition": partition, "recorded": False}
        result = simulation.run_partition(job_plan, partition, reader)
        faults.checkpoint(PARTITION_REPLAYED)
        estimate = None
        if partition == job_plan.sample_partition:
            estimate = simulation.estimate(job_plan, [result])
        recorded = self.jobs.record_partition(
            job_id,
            partition,
            result=result.as_json(),
            events=result.replayed.events,
            now=self.clock.now(),
            expires_from=job_plan.window_end,
            estimate=estimate,
        )
        faults.checkpoint(PARTITION_RECORDED)
        return {"job_id": job_id, "partition": partition, "recorded": recorded, "events": result.replayed.events}

    def merge_step(self, job_id: str) -> dict[str, Any]:
        from shared.usecases import simulation  # noqa: PLC0415

        job = self.get(job_id)
        if job.status != RUNNING:
            return {"job_id": job_id, "status": job.status, "changed": False}
        results = self.jobs.partition_results(job_id)
        answer = simulation.merge(job.plan, results)
        changed = self.jobs.finish(job_id, answer, self.clock.now())
        return {"job_id": job_id, "status": SUCCEEDED if changed else self._status(job_id), "changed": changed}

    def fail_step(self, job_id: str, caught: Mapping[str, Any]) -> dict[str, Any]:
        error = {"error": str(caught.get("Error") or "States.Runtime")[:128], "message": _message(caught)}
        changed = self.jobs.fail(job_id, error, self.clock.now())
        return {"job_id": job_id, "status": FAILED if changed else self._status(job_id), "changed": changed}

    def _status(self, job_id: str) -> str:
        """The status of a job a step could not change: it ended already (or, never stored, is missing)."""
        job = self.jobs.get(job_id)
        return job.status if job else "missing"

    def _runs(self) -> Runs:
        if self.runs is None:
            from shared.domain.errors import ConfigurationError  # noqa: PLC0415

            raise ConfigurationError("starting a simulation job needs SIMULATION_STATE_MACHINE_ARN")
        return self.runs


class JobNotRunning(Exception):
    """A step of a job that already ended (failed, or finished): its state machine stops."""


def _message(caught: Mapping[str, Any]) -> str:
    """What a caught error said: a Lambda failure's errorMessage (its Cause is JSON), else the Cause."""
    cause = caught.get("Cause")
    text = str(cause or "")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        text = f"{parsed.get('errorType', 'Error')}: {parsed['errorMessage']}"
    return text[:_ERROR_TEXT]
