"""Contact-limit policy: the pydantic model of every rule the engine applies, and the default."""

from __future__ import annotations

import json
from datetime import time, timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from shared.domain.contacts import MAX_FOLLOWUPS
from shared.domain.events import Channel, InteractionClosed, Label, Outcome, known_timezones

DEFAULT_POLICY_FILE = Path(__file__).with_name("default_policy.json")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _sorted(values: frozenset[Any]) -> list[Any]:
    return sorted(values)


# Sets are written sorted, so a document dumps the same way every time (dump, validate, dump).
OutcomeSet = Annotated[frozenset[Outcome], PlainSerializer(_sorted, when_used="json")]
LabelSet = Annotated[frozenset[Label], PlainSerializer(_sorted, when_used="json")]

# Reading back a version stored before a rule was added must not stop every decider: the store
# validates with this context, which skips the ledger bound (the commit path trims instead).
STORED = {"stored": True}


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
    # Across kinds: follow-ups of any kind count against these (none by default).
    any: tuple[Window, ...] = ()

    @property
    def windows(self) -> tuple[Window, ...]:
        return (*self.survey, *self.callback, *self.any)


class CallbackTriggers(_Strict):
    """Signals that the problem is not solved: any one of them earns a callback instead of a survey."""

    outcomes: OutcomeSet = frozenset({Outcome.UNRESOLVED, Outcome.ESCALATED})
    sentiment_at_or_below: Annotated[float, Field(ge=-1, le=1)] | None = -0.5
    contact_attempts_at_least: Annotated[int, Field(ge=1)] | None = 3
    reopen_count_at_least: Annotated[int, Field(ge=1)] | None = 1


class Skip(_Strict):
    """Interactions that get no follow-up at all, or no survey."""

    outcomes: OutcomeSet = frozenset({Outcome.ABANDONED})
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


class Fatigue(_Strict):
    """Adaptive survey fatigue: a released survey with no response within `ignore_after_days` is
    ignored; after `ignored_in_a_row` ignored in a row (a response ends the run), no survey for
    `pause_days` from the end of the last ignored one's window. `pause_days: 0` turns it off
    (do that if your sending systems do not report survey responses)."""

    ignore_after_days: Annotated[int, Field(ge=1, le=365)] = 7
    ignored_in_a_row: Annotated[int, Field(ge=1, le=100)] = 3
    pause_days: Annotated[int, Field(ge=0, le=3660)] = 180

    @property
    def ignore_after(self) -> timedelta:
        return timedelta(days=self.ignore_after_days)

    @property
    def pause(self) -> timedelta:
        return timedelta(days=self.pause_days)


class Rules(_Strict):
    """The rules an override may change; a nested object given here is merged into the base one
    field by field (e.g. `caps: {survey: [...]}` keeps the base callback caps). Only the fields
    given count (`model_fields_set`), which is why a stored override keeps only those."""

    caps: Caps | None = None
    min_gap_hours_before_survey: Annotated[int, Field(ge=0, le=24 * 365)] | None = None
    callback_triggers: CallbackTriggers | None = None
    skip: Skip | None = None
    survey_sample_rate: Annotated[float, Field(ge=0, le=1)] | None = None
    quiet_hours: QuietHours | None = None  # given as null: no quiet hours in this scope
    enabled: Enabled | None = None
    survey_delay_minutes: Annotated[int, Field(ge=0, le=7 * 24 * 60)] | None = None
    survey_freshness_hours: Annotated[int, Field(ge=1, le=24 * 90)] | None = None
    survey_cooldown_after_response_days: Annotated[int, Field(ge=0, le=3660)] | None = None
    fatigue: Fatigue | None = None

    @field_validator(
        "caps",
        "min_gap_hours_before_survey",
        "callback_triggers",
        "skip",
        "survey_sample_rate",
        "enabled",
        "survey_delay_minutes",
        "survey_freshness_hours",
        "survey_cooldown_after_response_days",
        "fatigue",
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Only an explicit null reaches this (defaults are not validated).
        if value is None:
            raise ValueError("cannot be null: leave it out to keep the base rule")
        return value


class Scope(_Strict):
    """Which interactions an override applies to; every given key must match."""

    segment: Label | None = None
    brand: Label | None = None
    channel: Channel | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.specificity == 0:  # `{"segment": null}` matches everything too
            raise ValueError("give at least one of segment, brand or channel (an empty scope is the base policy)")
        return self

    @property
    def specificity(self) -> int:
        return sum(1 for key in ("segment", "brand", "channel") if getattr(self, key) is not None)

    @property
    def label(self) -> str:
        return ",".join(
            f"{k}={getattr(self, k)}" for k in ("segment", "brand", "channel") if getattr(self, k) is not None
        )

    def matches(self, segment: str | None, brand: str | None, channel: str | None) -> bool:
        given = {"segment": segment, "brand": brand, "channel": channel}
        return all(getattr(self, k) is None or getattr(self, k) == v for k, v in given.items())


class Override(_Strict):
    scope: Scope
    rules: Rules
    description: Annotated[str, Field(max_length=500)] = ""


class Base(_Strict):
    caps: Caps = Caps()
    min_gap_hours_before_survey: Annotated[int, Field(ge=0, le=24 * 365)] = 72
    callback_triggers: CallbackTriggers = CallbackTriggers()
    skip: Skip = Skip()
    survey_sample_rate: Annotated[float, Field(ge=0, le=1)] = 1.0
    quiet_hours: QuietHours | None = QuietHours()
    enabled: Enabled = Enabled()
    # Surveys wait this long after the interaction closed (then quiet hours apply), so a quick
    # re-contact can still cancel them; callbacks never wait for it.
    survey_delay_minutes: Annotated[int, Field(ge=0, le=7 * 24 * 60)] = 120
    # A survey that would go out later than this after its interaction closed is cancelled (EXPIRED).
    survey_freshness_hours: Annotated[int, Field(ge=1, le=24 * 90)] = 48
    survey_cooldown_after_response_days: Annotated[int, Field(ge=0, le=3660)] = 90
    fatigue: Fatigue = Fatigue()

    @property
    def min_gap_before_survey(self) -> timedelta:
        return timedelta(hours=self.min_gap_hours_before_survey)

    @property
    def survey_delay(self) -> timedelta:
        return timedelta(minutes=self.survey_delay_minutes)

    @property
    def survey_freshness(self) -> timedelta:
        return timedelta(hours=self.survey_freshness_hours)

    @property
    def survey_cooldown_after_response(self) -> timedelta:
        return timedelta(days=self.survey_cooldown_after_response_days)


# Rules that only ever affect surveys.
SURVEY_ONLY_RULES = frozenset(
    {
        "survey_sample_rate",
        "min_gap_hours_before_survey",
        "survey_delay_minutes",
        "survey_freshness_hours",
        "survey_cooldown_after_response_days",
        "fatigue",
    }
)


class Policy(Base):
    """Every rule the decision engine applies. Defaults are the documented default policy."""

    version: Annotated[int, Field(ge=0)] = 0
    excluded_segments: LabelSet = frozenset()
    overrides: tuple[Override, ...] = ()
    # The rules each override yields, merged once at validation rather than per event.
    _effective: tuple[Base, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _overrides_can_apply(self, info: ValidationInfo) -> Self:
        seen: dict[Scope, int] = {}
        for index, override in enumerate(self.overrides):
            if override.scope in seen:
                raise ValueError(
                    f"overrides.{index} has the same scope as overrides.{seen[override.scope]}, so it can never apply"
                )
            seen[override.scope] = index
            if not override.rules.model_fields_set:
                raise ValueError(f"overrides.{index} changes no rule")
            segment = override.scope.segment
            if (
                segment is not None
                and segment in self.excluded_segments
                and set(override.rules.model_fields_set) <= SURVEY_ONLY_RULES
            ):
                raise ValueError(
                    f"overrides.{index} only changes survey rules for segment {segment}, which is never surveyed"
                )
        self._effective = tuple(merged(self, o.rules) for o in self.overrides)
        if not (info.context or {}).get("stored"):
            _check_ledger_bound(self)
        return self

    @property
    def ledger_retention(self) -> timedelta:
        """How long a follow-up can still count: the longest window, and at least a year so that
        "one follow-up per interaction" holds for any interaction that can still be re-closed."""
        spans = [w.length for rules in self._all_rules() for w in rules.caps.windows]
        gaps = [rules.min_gap_before_survey for rules in self._all_rules()]
        # A response starts a cooldown and an ignored run a pause: the surveys behind them must
        # still be in the ledger until those end.
        learned = [
            max(rules.survey_cooldown_after_response, rules.fatigue.ignore_after + rules.fatigue.pause)
            for rules in self._all_rules()
        ]
        return max([timedelta(days=366), *gaps, *spans, *learned])

    def rules_for(
        self, segment: str | None = None, brand: str | None = None, channel: str | None = None
    ) -> tuple[Base, str]:
        """The rules that apply to an interaction of this segment, brand and channel, and the scope
        they came from: the most specific matching override wins; among equally specific ones, the
        first listed. The one place effective rules come from (engine, simulation, contact state)."""
        matching = [o for o in self.overrides if o.scope.matches(segment, brand, channel)]
        if not matching:
            return self, "default"
        best = max(matching, key=lambda o: o.scope.specificity)  # max keeps the first of equals
        return self._effective[self.overrides.index(best)], best.scope.label

    def for_event(self, event: InteractionClosed) -> tuple[Base, str]:
        return self.rules_for(event.segment, event.brand, event.channel)

    def document(self) -> dict[str, Any]:
        """The policy as marketing ops write it, without the version the store assigns; validating
        it gives this policy back (dump, validate, dump: identical). Base rules are written in
        full; an override only with what it sets, so it still merges into the base rule by rule
        (a model default written out would overwrite the base's rule)."""
        document: dict[str, Any] = self.model_dump(mode="json", exclude={"version", "overrides"})
        document["overrides"] = [o.model_dump(mode="json", exclude_unset=True) for o in self.overrides]
        return document

    def _all_rules(self) -> list[Base]:
        return [self, *self._effective]


def merged(base: Base, rules: Rules) -> Base:
    """`base` with what `rules` sets: a nested object field by field (a `quiet_hours` giving only
    `start` keeps the base `end`), a list (a cap list) as a whole."""
    updates: dict[str, object] = {}
    for name in rules.model_fields_set:
        value = getattr(rules, name)
        current = getattr(base, name)
        if isinstance(value, BaseModel) and isinstance(current, BaseModel):
            value = current.model_copy(update={k: getattr(value, k) for k in value.model_fields_set})
        updates[name] = value
    return Base.model_validate({**{k: getattr(base, k) for k in Base.model_fields}, **updates})


# A follow-up deferred by quiet hours is sent up to a day after its decision, so the send times a
# ledger holds span its retention and a bit more.
_SENT_AHEAD = timedelta(days=2)


def most_in(span: timedelta, windows: tuple[Window, ...]) -> int | None:
    """The most follow-ups these windows let into a stretch of time `span` long (None: no window):
    a window of length L admits `max` per L, and `span` overlaps at most span // L + 1 of them."""
    return min((w.max * (span // w.length + 1) for w in windows), default=None)


def ledger_load(rules: Base, retention: timedelta) -> dict[str, int | None]:
    """How many follow-ups of each kind one customer's ledger can hold under `rules` (None: unbounded)."""
    span = retention + _SENT_AHEAD
    caps = rules.caps
    load = {
        "survey": most_in(span, (*caps.survey, *caps.any)) if rules.enabled.survey else 0,
        "callback": most_in(span, (*caps.callback, *caps.any)) if rules.enabled.callback else 0,
    }
    survey, callback = load["survey"], load["callback"]
    total = None if survey is None or callback is None else survey + callback
    across = most_in(span, caps.any)
    load["total"] = across if total is None else min(total, across if across is not None else total)
    return load


def _check_ledger_bound(policy: Policy) -> None:
    """Refuses rules under which a customer's ledger (one DynamoDB item, 400 KB at most) could
    hold more than MAX_FOLLOWUPS follow-ups, naming the caps to change."""
    retention = policy.ledger_retention
    problems: list[InitErrorDetails] = []
    for where, rules in [((), policy), *((("overrides", i, "rules"), r) for i, r in enumerate(policy._effective))]:
        load = ledger_load(rules, retention)
        for kind in ("survey", "callback"):
            if load[kind] is None and load["total"] is None:
                problems.append(
                    _problem(
                        (*where, "caps", kind),
                        f"{kind}s are not capped, so one customer's ledger could outgrow its database item: "
                        "add a window such as {max: 4, days: 365} (or a caps.any window)",
                    )
                )
        total = load["total"]
        if total is not None and total > MAX_FOLLOWUPS:
            problems.append(
                _problem(
                    (*where, "caps"),
                    f"these caps let one customer collect up to {total} follow-ups (surveys {load['survey']}, "
                    f"callbacks {load['callback']}) in the {retention.days} days the ledger keeps them; at most "
                    f"{MAX_FOLLOWUPS} fit in its database item: lower a cap or lengthen its window",
                )
            )
    if problems:
        raise ValidationError.from_exception_data("Policy", problems)


def _problem(loc: tuple[str | int, ...], message: str) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("ledger_bound", message), loc=loc, input=None)


@cache
def default_policy() -> Policy:
    """The documented default policy (shared/domain/default_policy.json, see docs/policy.md)."""
    return Policy.model_validate(json.loads(DEFAULT_POLICY_FILE.read_text()))
