"""Request and response bodies of the admin API (the OpenAPI document is built from these)."""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from shared.domain.decision import Decision


# Every model here has defer_build: its schema is built the first time a route validates or answers
# with it (or the OpenAPI document is generated), not at the cold import of the function.
class DecisionPage(BaseModel):
    model_config = ConfigDict(defer_build=True)

    items: list[Decision]
    next_token: str | None = Field(
        default=None,
        description="Present while more decisions may follow: send it back as next_token. A page can hold fewer "
        "than `limit` decisions, even none, and still carry one (a range request reads at most 5,000 entries: a "
        "rare filter on a busy range is answered over several pages); only its absence means the end.",
    )


class OptOutView(BaseModel):
    model_config = ConfigDict(defer_build=True)

    kind: str
    source: str
    at: str


class PreferencesView(BaseModel):
    model_config = ConfigDict(defer_build=True)

    customer_id: str
    opt_outs: list[OptOutView]


class PreferencesChange(BaseModel):
    """Opt-outs to set (true) or lift (false); kinds left out are unchanged. Only JSON true and
    false: "yes", "off", 1 or "false" are refused, never guessed at."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    survey: StrictBool | None = None
    callback: StrictBool | None = None
    all: StrictBool | None = Field(default=None, description="no follow-up of any kind")
    source: Annotated[
        str, Field(min_length=1, max_length=200, description="Where the wish came from, e.g. support call 123.")
    ]


class DayStats(BaseModel):
    model_config = ConfigDict(defer_build=True)

    day: str
    total: int
    by_action: dict[str, int]
    by_reason: dict[str, int]
    suppression_rate: float | None
    released: int = Field(
        description="Held follow-ups released at their send time that day "
        "(an approval due at once counts in by_action only)."
    )
    released_by_action: dict[str, int]
    cancelled: int = Field(description="Held follow-ups cancelled at release or superseded that day.")
    cancelled_by_reason: dict[str, int] = Field(
        description="SUPERSEDED_BY_NEWER_INTERACTION, OPTED_OUT, EXPIRED or POLICY_FORBIDS."
    )


class StatsReport(BaseModel):
    model_config = ConfigDict(defer_build=True)

    days: list[DayStats]
    total: DayStats


class PendingFollowUp(BaseModel):
    model_config = ConfigDict(defer_build=True)

    decision_id: str
    kind: str
    send_at: str
    interaction_id: str


class SurveyRecord(BaseModel):
    """What the customer did with their surveys, and the pauses it started (policy: cooldown, fatigue)."""

    model_config = ConfigDict(defer_build=True)

    responses: int
    last_response: str | None
    ignored_in_a_row: int = Field(description="Released surveys with no response in their window, newest first.")
    ignored_threshold: int = Field(description="Ignored in a row that start a fatigue pause.")
    cooldown_until: str | None = Field(description="No survey until then: the customer answered one recently.")
    fatigue_until: str | None = Field(description="No survey until then: the customer ignored too many in a row.")


class ContactState(BaseModel):
    model_config = ConfigDict(defer_build=True)

    customer_id: str
    policy_version: int
    scope: dict[str, str | None] = Field(
        description="The segment, brand and channel the state is computed for, and `from`: query, "
        "latest_decision (the customer's newest decision) or none (the base rules)."
    )
    policy_scope: str = Field(description='The override whose rules apply ("default": the base policy).')
    as_of: str
    windows: list[dict[str, Any]]
    next_survey_allowed: str | None
    next_callback_allowed: str | None
    opt_outs: list[OptOutView]
    pending_follow_ups: list[PendingFollowUp] = Field(
        description="Follow-ups held until their send time, then re-checked and released or cancelled; earliest first."
    )
    survey_record: SurveyRecord
    recent_follow_ups: list[dict[str, Any]]
    last_entries: list[dict[str, Any]] = Field(description="Newest decisions and admin actions of the customer.")
    known: bool = Field(
        description="False when the governor has never seen this customer id (no decision and no admin "
        "action): the state is then the empty one any new customer starts with, not an error (a customer "
        "may be opted out before their first interaction)."
    )
    note: str | None = Field(default=None, description="Why the state is empty, when `known` is false.")
