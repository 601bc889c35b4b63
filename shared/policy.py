"""Contact-limit policy: the pydantic model of every rule the engine applies, and the default."""

from __future__ import annotations

import json
from datetime import time, timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.events import Outcome, known_timezones

DEFAULT_POLICY_FILE = Path(__file__).with_name("default_policy.json")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Strict):
    """At most `max` follow-ups whose send time falls in any sliding window of this length."""

    max: Annotated[int, Field(ge=0, le=1000)]
    days: Annotated[int, Field(ge=1, le=3660)] | None = None
    hours: Annotated[int, Field(ge=1, le=87840)] | None = None

    @model_validator(mode="after")
    def _one_length(self) -> Self:
        if (self.days is None) == (self.hours is None):
            raise ValueError("give exactly one of days or hours")
        return self

    @property
    def length(self) -> timedelta:
        return timedelta(days=self.days) if self.days is not None else timedelta(hours=self.hours or 0)

    @property
    def label(self) -> str:
        return f"{self.days} days" if self.days is not None else f"{self.hours} hours"


class Caps(_Strict):
    survey: tuple[Window, ...] = (Window(max=1, days=30), Window(max=4, days=365))
    callback: tuple[Window, ...] = (Window(max=1, days=7),)


class CallbackTriggers(_Strict):
    """Signals that the problem is not solved: any one of them earns a callback instead of a survey."""

    outcomes: frozenset[Outcome] = frozenset({Outcome.UNRESOLVED, Outcome.ESCALATED})
    sentiment_at_or_below: Annotated[float, Field(ge=-1, le=1)] | None = -0.5
    contact_attempts_at_least: Annotated[int, Field(ge=1)] | None = 3
    reopen_count_at_least: Annotated[int, Field(ge=1)] | None = 1


class Skip(_Strict):
    """Interactions that get no follow-up at all, or no survey."""

    outcomes: frozenset[Outcome] = frozenset({Outcome.ABANDONED})
    max_event_age_hours: Annotated[int, Field(ge=1, le=24 * 30)] = 72
    min_handle_seconds_for_survey: Annotated[int, Field(ge=0)] = 0


class QuietHours(_Strict):
    """No follow-up is sent from `start` to `end` local time; the send time moves to `end`."""

    start: time = time(20, 0)
    end: time = time(9, 0)
    default_timezone: str = "UTC"

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value not in known_timezones():
            raise ValueError("is not an IANA time zone name, e.g. Europe/Paris")
        return value


class Enabled(_Strict):
    survey: bool = True
    callback: bool = True


class Policy(_Strict):
    """Every rule the decision engine applies. Defaults are the documented default policy."""

    version: Annotated[int, Field(ge=0)] = 0
    caps: Caps = Caps()
    min_gap_hours_before_survey: Annotated[int, Field(ge=0, le=24 * 365)] = 72
    callback_triggers: CallbackTriggers = CallbackTriggers()
    skip: Skip = Skip()
    survey_sample_rate: Annotated[float, Field(ge=0, le=1)] = 1.0
    quiet_hours: QuietHours | None = QuietHours()
    excluded_segments: frozenset[str] = frozenset()
    enabled: Enabled = Enabled()

    @property
    def min_gap_before_survey(self) -> timedelta:
        return timedelta(hours=self.min_gap_hours_before_survey)

    @property
    def ledger_retention(self) -> timedelta:
        """How long a follow-up can still count: the longest window, and at least a year so that
        "one follow-up per interaction" holds for any interaction that can still be re-closed."""
        windows = [w.length for w in (*self.caps.survey, *self.caps.callback)]
        return max([timedelta(days=366), self.min_gap_before_survey, *windows])


@cache
def default_policy() -> Policy:
    """The documented default policy (shared/default_policy.json, see docs/policy.md)."""
    return Policy.model_validate(json.loads(DEFAULT_POLICY_FILE.read_text()))
