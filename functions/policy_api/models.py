"""Request and response bodies of the marketing-ops policy API (the OpenAPI document is built from these)."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PolicyDocument = Annotated[
    dict[str, Any],
    Field(description="A contact policy (see docs/policy.md); validated with every problem listed by path."),
]


# Every model here has defer_build: its schema is built the first time a route validates or answers
# with it (or the OpenAPI document is generated), not at the cold import of the function.
class PolicyChange(BaseModel):
    model_config = ConfigDict(defer_build=True)

    policy: PolicyDocument
    comment: Annotated[str, Field(min_length=1, max_length=500, description="Why: shown in the history.")]


class Candidate(BaseModel):
    model_config = ConfigDict(defer_build=True)

    policy: PolicyDocument


class SimulationRequest(BaseModel):
    model_config = ConfigDict(defer_build=True)

    policy: PolicyDocument
    days: Annotated[
        int,
        Field(
            ge=1,
            le=90,
            description="Replay the decision log of the last N days (whole UTC days, as the stats count them); "
            "at most 90 here, longer windows (up to the log's retention) as a job: POST /policy/simulations.",
        ),
    ] = 30
    sample_size: Annotated[int, Field(ge=0, le=200, description="Customers whose outcome changes, at most.")] = 20


class RollbackRequest(BaseModel):
    model_config = ConfigDict(defer_build=True)

    version: Annotated[int, Field(ge=0, description="The version to make current again (0: the built-in default).")]
    comment: Annotated[str, Field(max_length=500)] = ""


class Change(BaseModel):
    model_config = ConfigDict(defer_build=True)

    path: str
    before: Any = None
    after: Any = None


class PolicyVersion(BaseModel):
    model_config = ConfigDict(defer_build=True)

    version: int
    author: str
    created_at: datetime
    comment: str
    kind: str = Field(description="update, rollback or builtin")
    based_on: int | None = None
    diff: list[Change] = Field(default_factory=list)
    policy: dict[str, Any] | None = None


class VersionList(BaseModel):
    model_config = ConfigDict(defer_build=True)

    items: list[PolicyVersion]
    next_token: str | None = None


class Problem(BaseModel):
    model_config = ConfigDict(defer_build=True)

    field: str
    message: str


class ValidationReport(BaseModel):
    model_config = ConfigDict(defer_build=True)

    valid: bool
    problems: list[Problem] = Field(default_factory=list)
    diff: list[Change] = Field(default_factory=list, description="Against the current version, when valid.")


class Tally(BaseModel):
    model_config = ConfigDict(defer_build=True)

    version: int
    by_action: dict[str, int]
    by_reason: dict[str, int]
    released: int = Field(description="Follow-ups released (at once, or re-checked at their send time).")
    cancelled: int = Field(description="Pending follow-ups cancelled (superseded, expired, forbidden).")
    cancelled_by_reason: dict[str, int]
    pending: int = Field(description="Held follow-ups left at the end: always 0, every one falls due.")
    outcomes_applied: int = Field(
        description="Logged outcomes applied: only those of follow-ups this policy released count."
    )


class ChangedEvent(BaseModel):
    model_config = ConfigDict(defer_build=True)

    event_id: str
    closed_at: str
    current: dict[str, str]
    candidate: dict[str, str]


class ChangedCustomer(BaseModel):
    model_config = ConfigDict(defer_build=True)

    customer_id: str
    events: list[ChangedEvent]


class Difference(BaseModel):
    model_config = ConfigDict(defer_build=True)

    by_action: dict[str, int]
    by_reason: dict[str, int]


class SimulationWindow(BaseModel):
    model_config = ConfigDict(defer_build=True)

    start: datetime = Field(description="00:00 UTC of the day `days` days ago: whole days, as the stats count them.")
    end: datetime
    warm_up_start: datetime = Field(
        description="Ledgers start the window as production had them: logged approvals, outcomes and "
        "opt-outs from here on, not decided again (the longest span any rule of either policy looks back)."
    )


class WarmUpReport(BaseModel):
    model_config = ConfigDict(defer_build=True)

    approvals: int
    pending_at_start: int
    outcomes: int
    preference_changes: int
    first_day: str | None = Field(description="The earliest day of that history found in the log.")


class LogCoverage(BaseModel):
    model_config = ConfigDict(defer_build=True)

    first_day: str | None = Field(description="The first UTC day of the window with a logged decision.")
    last_day: str | None
    days_with_decisions: int
    window_days: int
    warm_up: WarmUpReport


class LoggedTally(BaseModel):
    model_config = ConfigDict(defer_build=True)

    by_action: dict[str, int]
    by_reason: dict[str, int]
    by_policy_version: dict[str, int]
    released: int
    cancelled: int
    cancelled_by_reason: dict[str, int]
    pending: int = Field(description="Follow-ups decided in the window still pending in the log.")


class LoggedDifference(BaseModel):
    model_config = ConfigDict(defer_build=True)

    event_id: str
    customer_id: str
    decided_at: str
    logged: dict[str, str]
    replayed: dict[str, str]


class CurrentVsLogged(BaseModel):
    model_config = ConfigDict(defer_build=True)

    matching: int = Field(description="Logged decisions the current policy, replayed, decides as logged.")
    differing: int
    other_policy_version: int = Field(description="Differing, and logged under another policy version.")
    unexplained: int = Field(description="Differing under the same policy version.")
    unexplained_sample: list[LoggedDifference]
    explanations: list[str] = Field(description="Each kind of difference between the replay and the log, said.")


class SimulationReport(BaseModel):
    model_config = ConfigDict(defer_build=True)

    days: int
    events: int
    current: Tally
    candidate: Tally
    difference: Difference
    changed_events: int
    changed_customers_sample: list[ChangedCustomer]
    seconds: float
    window: SimulationWindow
    log: LogCoverage
    logged: LoggedTally = Field(description="What the log holds for the window's decisions.")
    current_vs_logged: CurrentVsLogged
    warnings: list[str] = Field(description="The window is longer than the log; the warm-up reaches past retention.")


# ---- the asynchronous simulation job (POST /policy/simulations) ------------------------------


class SimulationJobRequest(BaseModel):
    model_config = ConfigDict(defer_build=True)

    policy: PolicyDocument
    days: Annotated[
        int,
        Field(
            ge=1,
            le=3650,
            description="Replay the decision log of the last N days (whole UTC days), up to the log's retention "
            "(DecisionRetentionDays, 400 by default).",
        ),
    ] = 30
    sample_size: Annotated[int, Field(ge=0, le=200, description="Customers whose outcome changes, at most.")] = 20
    client_token: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=128,
            description="An idempotency key, for clients that cannot send the Idempotency-Key header.",
        ),
    ] = None


class SimulationJobStarted(BaseModel):
    model_config = ConfigDict(defer_build=True)

    job_id: str
    status: Literal["running", "succeeded", "failed"]
    status_url: str = Field(description="GET it (relative to the API's base URL) for progress, then the answer.")


class JobProgress(BaseModel):
    model_config = ConfigDict(defer_build=True)

    partitions_done: int
    partitions: int = Field(description="The job's partitions: its customers split by hash, replayed in parallel.")
    events_replayed: int = Field(description="Logged events replayed by the partitions done.")


class EstimateError(BaseModel):
    model_config = ConfigDict(defer_build=True)

    partitions: list[int] = Field(description="The partitions the estimate comes from.")
    share_of_customers: float
    customers_replayed: int
    standard_error: dict[str, float] = Field(description="Of each count, by its flat name (current.by_action.survey).")
    interval_95: dict[str, list[float]]


class SimulationEstimate(SimulationReport):
    """The answer from a deterministic sample of the customers (one partition, by hash), every
    count scaled up, with its error: available before the whole job is done."""

    model_config = ConfigDict(defer_build=True)

    estimate: EstimateError


class JobError(BaseModel):
    model_config = ConfigDict(defer_build=True)

    error: str = Field(description="What the job's state machine caught, e.g. States.ExceedToleratedFailureThreshold.")
    message: str


class SimulationJobStatus(BaseModel):
    model_config = ConfigDict(defer_build=True)

    job_id: str
    status: Literal["running", "succeeded", "failed"]
    days: int
    created_at: datetime
    finished_at: datetime | None = None
    progress: JobProgress
    estimate: SimulationEstimate | None = Field(
        default=None, description="As soon as the sample partition is done; null before."
    )
    result: SimulationReport | None = Field(
        default=None, description="When the job succeeded: the answer POST /policy/simulate gives."
    )
    error: JobError | None = Field(default=None, description="When the job failed: why.")
