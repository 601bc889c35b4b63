"""Request and response bodies of the marketing-ops policy API (the OpenAPI document is built from these)."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

PolicyDocument = Annotated[
    dict[str, Any],
    Field(description="A contact policy (see docs/policy.md); validated with every problem listed by path."),
]


class PolicyChange(BaseModel):
    policy: PolicyDocument
    comment: Annotated[str, Field(min_length=1, max_length=500, description="Why: shown in the history.")]


class Candidate(BaseModel):
    policy: PolicyDocument


class SimulationRequest(BaseModel):
    policy: PolicyDocument
    days: Annotated[int, Field(ge=1, le=90, description="Replay the decision log of the last N days.")] = 30
    sample_size: Annotated[int, Field(ge=0, le=200, description="Customers whose outcome changes, at most.")] = 20


class RollbackRequest(BaseModel):
    version: Annotated[int, Field(ge=0, description="The version to make current again (0: the built-in default).")]
    comment: Annotated[str, Field(max_length=500)] = ""


class Change(BaseModel):
    path: str
    before: Any = None
    after: Any = None


class PolicyVersion(BaseModel):
    version: int
    author: str
    created_at: datetime
    comment: str
    kind: str = Field(description="update, rollback or builtin")
    based_on: int | None = None
    diff: list[Change] = Field(default_factory=list)
    policy: dict[str, Any] | None = None


class VersionList(BaseModel):
    items: list[PolicyVersion]
    next_token: str | None = None


class Problem(BaseModel):
    field: str
    message: str


class ValidationReport(BaseModel):
    valid: bool
    problems: list[Problem] = Field(default_factory=list)
    diff: list[Change] = Field(default_factory=list, description="Against the current version, when valid.")


class Tally(BaseModel):
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
    event_id: str
    closed_at: str
    current: dict[str, str]
    candidate: dict[str, str]


class ChangedCustomer(BaseModel):
    customer_id: str
    events: list[ChangedEvent]


class Difference(BaseModel):
    by_action: dict[str, int]
    by_reason: dict[str, int]


class SimulationReport(BaseModel):
    days: int
    events: int
    current: Tally
    candidate: Tally
    difference: Difference
    changed_events: int
    changed_customers_sample: list[ChangedCustomer]
    seconds: float
