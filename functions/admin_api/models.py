"""Request and response bodies of the admin API (the OpenAPI document is built from these)."""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.decision import Decision


class DecisionPage(BaseModel):
    items: list[Decision]
    next_token: str | None = None


class OptOutView(BaseModel):
    kind: str
    source: str
    at: str


class PreferencesView(BaseModel):
    customer_id: str
    opt_outs: list[OptOutView]


class PreferencesChange(BaseModel):
    """Opt-outs to set (true) or lift (false); kinds left out are unchanged."""

    model_config = ConfigDict(extra="forbid")

    survey: bool | None = None
    callback: bool | None = None
    all: bool | None = Field(default=None, description="no follow-up of any kind")
    source: Annotated[
        str, Field(min_length=1, max_length=200, description="Where the wish came from, e.g. support call 123.")
    ]


class DayStats(BaseModel):
    day: str
    total: int
    by_action: dict[str, int]
    by_reason: dict[str, int]
    suppression_rate: float | None


class StatsReport(BaseModel):
    days: list[DayStats]
    total: DayStats


class ContactState(BaseModel):
    customer_id: str
    policy_version: int
    as_of: str
    windows: list[dict[str, Any]]
    next_survey_allowed: str | None
    next_callback_allowed: str | None
    opt_outs: list[OptOutView]
    recent_follow_ups: list[dict[str, Any]]
    last_entries: list[dict[str, Any]] = Field(description="Newest decisions and admin actions of the customer.")
