"""The pure decision engine: event + contact ledger + policy + now -> one decision.

No I/O and no clock reading here, so it can be tested exhaustively and replayed for simulation.
"""

from __future__ import annotations

import struct
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from itertools import chain
from operator import attrgetter
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from shared.domain.contacts import PENDING, ContactLedger, FollowUp
from shared.domain.decision import (
    ALL_DECISION_FIELDS,
    Action,
    CancelReason,
    Decision,
    Reason,
    State,
    decision_id_for,
    input_of,
    set_model_dict,
    set_model_extra,
    set_model_fields_set,
    set_model_private,
    sha256,
)
from shared.domain.events import InteractionClosed, Outcome
from shared.domain.explanation import Explanation, Record
from shared.domain.policy import Base as Rules
from shared.domain.policy import Policy, QuietHours


# The enum members the engine uses, copied into plain classes: in Python 3.11 reading a member
# from its enum class (Action.SURVEY) goes through the enum metaclass's __getattr__ hook and costs
# more than checking a rule.
class _A:
    CALLBACK = Action.CALLBACK
    NONE = Action.NONE
    SURVEY = Action.SURVEY


class _R:
    ABANDONED_INTERACTION = Reason.ABANDONED_INTERACTION
    ALREADY_FOLLOWED_UP = Reason.ALREADY_FOLLOWED_UP
    CALLBACK_CAP_REACHED = Reason.CALLBACK_CAP_REACHED
    CALLBACK_DISABLED = Reason.CALLBACK_DISABLED
    CALLBACK_ESCALATED = Reason.CALLBACK_ESCALATED
    CALLBACK_NEGATIVE_SENTIMENT = Reason.CALLBACK_NEGATIVE_SENTIMENT
    CALLBACK_REOPENED = Reason.CALLBACK_REOPENED
    CALLBACK_REPEAT_CONTACT = Reason.CALLBACK_REPEAT_CONTACT
    CALLBACK_UNRESOLVED = Reason.CALLBACK_UNRESOLVED
    CONTACT_CAP_REACHED = Reason.CONTACT_CAP_REACHED
    CONTACT_COOLDOWN = Reason.CONTACT_COOLDOWN
    NOT_SAMPLED = Reason.NOT_SAMPLED
    OPTED_OUT = Reason.OPTED_OUT
    QUIET_HOURS_DEFERRED = Reason.QUIET_HOURS_DEFERRED
    SEGMENT_EXCLUDED = Reason.SEGMENT_EXCLUDED
    SHORT_INTERACTION = Reason.SHORT_INTERACTION
    STALE_EVENT = Reason.STALE_EVENT
    SURVEY_CAP_REACHED = Reason.SURVEY_CAP_REACHED
    SURVEY_COOLDOWN_AFTER_RESPONSE = Reason.SURVEY_COOLDOWN_AFTER_RESPONSE
    SURVEY_DELAYED = Reason.SURVEY_DELAYED
    SURVEY_DISABLED = Reason.SURVEY_DISABLED
    SURVEY_ELIGIBLE = Reason.SURVEY_ELIGIBLE
    SURVEY_FATIGUE = Reason.SURVEY_FATIGUE


class _S:
    CANCELLED = State.CANCELLED
    PENDING = State.PENDING
    RELEASED = State.RELEASED
    SUPPRESSED = State.SUPPRESSED


class _C:
    EXPIRED = CancelReason.EXPIRED
    OPTED_OUT = CancelReason.OPTED_OUT
    POLICY_FORBIDS = CancelReason.POLICY_FORBIDS
    SUPERSEDED_BY_NEWER_INTERACTION = CancelReason.SUPERSEDED_BY_NEWER_INTERACTION


class _O:
    ABANDONED = Outcome.ABANDONED


def decide(event: InteractionClosed, ledger: ContactLedger, policy: Policy, now: datetime) -> Decision:
    """Decides `event`. Pending follow-ups this newer interaction supersedes are cancelled by the
    same decision (`supersedes`), and it is decided with their slots free.

    Nothing is formatted here: each rule leaves a record (shared.domain.explanation) that is
    rendered into its sentence when the decision is read, and the decision is built from values
    the engine made itself, without validating them again."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    # The event's fields, read from its dict: they are read often, and a pydantic model's
    # attribute goes through its __getattr__ hook.
    given = event.__dict__
    scoped = _SCOPED.get(id(policy))
    if scoped is None or scoped.policy is not policy:
        scoped = _scoped(policy)
    if scoped.overrides:
        rules, scope = policy.for_event(event)
        facts = _facts(rules)
    else:
        facts, scope = scoped.facts, "default"
    action, reasons, records, send_at, gone = _evaluate(given, ledger, facts, scoped.excluded, now)
    if action is _A.NONE:
        state = _S.SUPPRESSED
        send_at = None
    else:
        state = _S.PENDING if send_at is not None and send_at > now else _S.RELEASED
    decision = _new_model(Decision)
    set_model_dict(
        decision,
        {
            "decision_id": decision_id_for(given["customer_id"], given["event_id"]),
            "event_id": given["event_id"],
            "interaction_id": given["interaction_id"],
            "customer_id": given["customer_id"],
            "action": action,
            "reasons": reasons,
            "explanation": Explanation(records),
            "policy_version": scoped.version,
            "policy_scope": scope,
            "send_at": send_at,
            "decided_at": now,
            "input": input_of(given),
            "state": state,
            "state_reason": None,
            "state_changed_at": now,
            "supersedes": gone,
        },
    )
    set_model_fields_set(decision, ALL_DECISION_FIELDS)
    set_model_extra(decision, None)
    set_model_private(decision, None)
    return decision


def supersedable(event: InteractionClosed, ledger: ContactLedger, rules: Rules) -> tuple[FollowUp, ...]:
    """The pending follow-ups that `event` (an interaction that closed after theirs) makes moot:
    a pending survey by any newer interaction of the customer; a pending callback by a newer one
    that was not abandoned (an abandoned attempt to reach us makes the callback more needed).
    And a pending survey of this very interaction, re-closed with a callback trigger: the
    customer has told us the problem is not solved, so "how did we do?" is the wrong question."""
    found = []
    closed_at = event.closed_at
    for f in ledger.followups:
        if f.state != PENDING or f.closed_at is None or f.closed_at >= closed_at:
            continue  # not pending, or not older: an event arriving out of order never cancels a later one
        if f.interaction_id == event.interaction_id:
            moot = f.kind is _A.SURVEY and bool(_callback_triggers(event, rules))
        else:
            moot = f.kind is _A.SURVEY or event.outcome is not _O.ABANDONED
        if moot:
            found.append(f)
    return tuple(found)


# A cap window as the engine checks it: (max, length, label).
_Cap = tuple[int, timedelta, str]


class _Facts:
    """The rules of one policy scope as the engine reads them, spans computed once: a policy is
    read once and decides many events."""

    __slots__ = (
        "any_caps",
        "attempts_at_least",
        "callback_caps",
        "callback_enabled",
        "cooldown",
        "cooldown_days",
        "default_zone",
        "fatigue",
        "fatigue_figures",
        "freshness",
        "freshness_hours",
        "gap",
        "gap_hours",
        "ignore_after",
        "ignore_after_days",
        "max_age",
        "max_age_hours",
        "min_handle",
        "no_callback_caps",
        "no_fatigue_record",
        "no_gap_record",
        "no_response_record",
        "no_survey_caps",
        "pause",
        "quiet",
        "reopens_at_least",
        "rules",
        "sample_rate",
        "sentiment_at_or_below",
        "skip_outcomes",
        "survey_caps",
        "survey_delay",
        "survey_delay_minutes",
        "survey_enabled",
        "trigger_outcomes",
    )

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.skip_outcomes = rules.skip.outcomes
        self.max_age_hours = rules.skip.max_event_age_hours
        self.max_age = timedelta(hours=self.max_age_hours)
        self.min_handle = rules.skip.min_handle_seconds_for_survey
        triggers = rules.callback_triggers
        self.trigger_outcomes = triggers.outcomes
        self.sentiment_at_or_below = triggers.sentiment_at_or_below
        self.attempts_at_least = triggers.contact_attempts_at_least
        self.reopens_at_least = triggers.reopen_count_at_least
        self.survey_delay_minutes = rules.survey_delay_minutes
        self.survey_delay = rules.survey_delay
        quiet = rules.quiet_hours
        self.quiet = (quiet.start, quiet.end) if quiet is not None else None
        self.default_zone = rules.quiet_hours.default_timezone if rules.quiet_hours else "UTC"
        self.callback_enabled = rules.enabled.callback
        self.survey_enabled = rules.enabled.survey
        self.sample_rate = rules.survey_sample_rate
        self.freshness_hours = rules.survey_freshness_hours
        self.freshness = rules.survey_freshness
        self.cooldown_days = rules.survey_cooldown_after_response_days
        self.cooldown = rules.survey_cooldown_after_response
        fatigue = self.fatigue = rules.fatigue
        self.fatigue_figures = (fatigue.ignored_in_a_row, fatigue.pause_days)
        self.ignore_after = fatigue.ignore_after
        self.ignore_after_days = fatigue.ignore_after_days
        self.pause = fatigue.pause
        self.gap_hours = rules.min_gap_hours_before_survey
        self.gap = rules.min_gap_before_survey
        caps = rules.caps
        self.survey_caps = tuple((w.max, w.length, w.label) for w in caps.survey)
        self.callback_caps = tuple((w.max, w.length, w.label) for w in caps.callback)
        self.any_caps = tuple((w.max, w.length, w.label) for w in caps.any)
        # The records of a customer with no released survey, and of no follow-up near send time.
        self.no_response_record: Record = ("cdn", True, None, self.cooldown_days, None)
        self.no_fatigue_record: Record = ("fat", True, 0, *self.fatigue_figures, None, self.ignore_after_days)
        self.no_gap_record: Record = ("gap", True, self.gap_hours, None, None, None)
        self.no_survey_caps: tuple[Record, ...] = tuple(
            ("cap", True, _A.SURVEY, label, 0, cap, None, True) for cap, _, label in self.survey_caps
        )
        self.no_callback_caps: tuple[Record, ...] = tuple(
            ("cap", True, _A.CALLBACK, label, 0, cap, None, True) for cap, _, label in self.callback_caps
        )


# By identity (the entry keeps its rules alive, so an id is never reused while it is here).
_FACTS: dict[int, _Facts] = {}


def _facts(rules: Rules) -> _Facts:
    known = _FACTS.get(id(rules))
    if known is None or known.rules is not rules:
        if len(_FACTS) > 256:  # policy versions come and go
            _FACTS.clear()
        known = _FACTS[id(rules)] = _Facts(rules)
    return known


class _Scoped:
    """What a policy says before its scopes are looked at: its version, excluded segments, whether
    any override could apply, and the facts of its base rules."""

    __slots__ = ("excluded", "facts", "overrides", "policy", "version")

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.version = policy.version
        self.excluded = policy.excluded_segments
        self.overrides = bool(policy.overrides)
        self.facts = _facts(policy)


_SCOPED: dict[int, _Scoped] = {}


def _scoped(policy: Policy) -> _Scoped:
    """The policy's _Scoped, kept by identity (the entry keeps its policy alive)."""
    if len(_SCOPED) > 64:  # policy versions come and go
        _SCOPED.clear()
    known = _SCOPED[id(policy)] = _Scoped(policy)
    return known


# action, reasons, the rules' records, send time, the decision ids of the follow-ups superseded
_Verdict = tuple[Action, tuple[Reason, ...], tuple[Record, ...], datetime | None, tuple[str, ...]]


def _evaluate(
    given: dict[str, Any], ledger: ContactLedger, facts: _Facts, excluded_segments: frozenset[str], now: datetime
) -> _Verdict:
    records: list[Record] = []
    add = records.append
    # The callback triggers (as _triggers, written out: every decision reads them).
    triggers: list[Reason] = []
    outcome = given["outcome"]
    if outcome in facts.trigger_outcomes:
        triggers.append(_R.CALLBACK_ESCALATED if outcome == "escalated" else _R.CALLBACK_UNRESOLVED)
    lowest, sentiment = facts.sentiment_at_or_below, given["sentiment"]
    if lowest is not None and sentiment is not None and sentiment <= lowest:
        triggers.append(_R.CALLBACK_NEGATIVE_SENTIMENT)
    least, attempts = facts.attempts_at_least, given["contact_attempts"]
    if least is not None and attempts is not None and attempts >= least:
        triggers.append(_R.CALLBACK_REPEAT_CONTACT)
    least, reopens = facts.reopens_at_least, given["reopen_count"]
    if least is not None and reopens is not None and reopens >= least:
        triggers.append(_R.CALLBACK_REOPENED)

    # One pass over the ledger: the pending follow-ups this newer interaction supersedes (see
    # `supersedable`; it is decided with their slots free), this interaction's follow-ups, the
    # send times that count against the caps (a follow-up that never reached the customer took
    # none of their time) and the released surveys (what the customer did with them).
    interaction_id = given["interaction_id"]
    # In UTC, like every other instant here: datetimes with one tzinfo compare and subtract
    # without asking it for offsets, which otherwise costs more than the comparison.
    closed_at = given["closed_at"].astimezone(UTC)
    survey_kind = _A.SURVEY
    callback = survey = None
    superseded: list[FollowUp] = []
    released: list[FollowUp] = []
    surveys: list[datetime] = []
    callbacks: list[datetime] = []
    if followups := ledger.followups:
        # Held follow-ups of older interactions that this one makes moot (`supersedable`): a
        # survey always (of this interaction only when it came back unsolved), a callback unless
        # this interaction was abandoned.
        moot_survey, moot_callback = bool(triggers), outcome is not _O.ABANDONED
        for f in followups:
            if f.kind is survey_kind:
                if f.state != PENDING:
                    released.append(f)
                elif (
                    f.closed_at is not None
                    and f.closed_at < closed_at
                    and (moot_survey or f.interaction_id != interaction_id)
                ):
                    superseded.append(f)
                    continue
                if f.interaction_id == interaction_id and survey is None:
                    survey = f
                if not f.delivery_failed:
                    surveys.append(f.send_at)
            else:
                if (
                    f.state == PENDING
                    and f.closed_at is not None
                    and f.closed_at < closed_at
                    and moot_callback
                    and f.interaction_id != interaction_id
                ):
                    superseded.append(f)
                    continue
                if f.interaction_id == interaction_id and callback is None:
                    callback = f
                if not f.delivery_failed and f.reached is not False:
                    callbacks.append(f.send_at)

    if superseded:
        gone = tuple(f.decision_id for f in superseded)
        add(("sup", True, tuple(f.kind for f in superseded), gone))
    else:
        gone = ()
        add(_NOTHING_SUPERSEDED)

    opt_outs = ledger.opt_outs
    if opt_outs and (all_out := ledger.opted_out_of("all")) is not None:
        add(("opt", False, all_out.source, all_out.at))
        return _A.NONE, (_R.OPTED_OUT,), tuple(records), None, gone
    add(_NO_OPT_OUT)

    # One follow-up per interaction, except that a surveyed interaction which comes back unsolved
    # may still get its one callback: never a second survey, never a second callback.
    blocking = callback or (survey if not triggers else None)
    if blocking is not None:
        add(("one", False, blocking.decision_id, blocking.kind))
        return _A.NONE, (_R.ALREADY_FOLLOWED_UP,), tuple(records), None, gone
    add(("one", True, survey.decision_id, None) if survey else _NO_EARLIER)

    if outcome in facts.skip_outcomes:
        add(("sko", False, outcome))
        return _A.NONE, (_R.ABANDONED_INTERACTION,), tuple(records), None, gone
    add(("sko", True, outcome))

    age = now - closed_at
    if age > facts.max_age:
        add(("age", False, age, facts.max_age_hours))
        return _A.NONE, (_R.STALE_EVENT,), tuple(records), None, gone
    add(("age", True, age, facts.max_age_hours))

    extra: list[Reason] = []
    earliest = now
    if not triggers:
        # Surveys wait a while after the interaction, so a quick re-contact can still cancel them.
        delay_end = closed_at + facts.survey_delay
        delayed = delay_end > now
        if delayed:
            earliest = delay_end
            extra.append(_R.SURVEY_DELAYED)
        add(("dly", True, facts.survey_delay_minutes, earliest, delayed))
    quiet = facts.quiet
    timezone = given["customer_timezone"] or facts.default_zone
    if quiet is None:
        send_at = earliest
        add(("qh", True, timezone, send_at, False))
    else:
        zone = _ZONES.get(timezone)
        if zone is None:
            zone = _ZONES[timezone] = ZoneInfo(timezone)  # names are validated: a few hundred at most
        send_at = _outside_quiet_hours(earliest, zone, *quiet)
        if send_at > earliest:
            extra.append(_R.QUIET_HOURS_DEFERRED)
            add(("qh", True, timezone, send_at, True))
        else:
            add(("qh", True, timezone, send_at, False))

    if triggers:
        add(("trg", True, tuple(triggers)))
        # An unsolved problem never gets a survey: the answer is a callback or nothing.
        if not facts.callback_enabled:
            add(_CALLBACKS_OFF)
            return _A.NONE, (_R.CALLBACK_DISABLED, *triggers), tuple(records), None, gone
        add(_CALLBACKS_ON)
        if opt_outs:
            if _opted_out(ledger, "callback", add):
                return _A.NONE, (_R.OPTED_OUT, *triggers), tuple(records), None, gone
        else:
            add(_NO_CALLBACK_OPT_OUT)
        if callbacks:
            callbacks.sort()
        if not callbacks:
            records += facts.no_callback_caps
        elif _cap_checks(_A.CALLBACK, callbacks, facts.callback_caps, send_at, add):
            return _A.NONE, (_R.CALLBACK_CAP_REACHED, *triggers), tuple(records), None, gone
        if facts.any_caps and _cap_checks(ANY_KIND, sorted(surveys + callbacks), facts.any_caps, send_at, add):
            return _A.NONE, (_R.CONTACT_CAP_REACHED, *triggers), tuple(records), None, gone
        return _A.CALLBACK, (*triggers, *extra), tuple(records), send_at, gone

    add(_NO_TRIGGERS)
    if not facts.survey_enabled:
        add(_SURVEYS_OFF)
        return _A.NONE, (_R.SURVEY_DISABLED,), tuple(records), None, gone
    add(_SURVEYS_ON)
    if opt_outs:
        if _opted_out(ledger, "survey", add):
            return _A.NONE, (_R.OPTED_OUT,), tuple(records), None, gone
    else:
        add(_NO_SURVEY_OPT_OUT)
    segment = given["segment"]
    if segment is not None and segment in excluded_segments:
        add(("seg", False, segment))
        return _A.NONE, (_R.SEGMENT_EXCLUDED,), tuple(records), None, gone
    add(("seg", True, segment))
    minimum = facts.min_handle
    handled = given["handle_seconds"]
    if minimum > 0 and handled is not None and handled < minimum:
        add(("mht", False, handled, minimum))
        return _A.NONE, (_R.SHORT_INTERACTION,), tuple(records), None, gone
    add(("mht", True, handled, minimum))
    draw = _FIRST_WORD.unpack_from(sha256(("survey-sample:" + interaction_id).encode()).digest())[0] / 2**64
    rate = facts.sample_rate
    if draw >= rate:
        add(("smp", False, draw, rate))
        return _A.NONE, (_R.NOT_SAMPLED,), tuple(records), None, gone
    add(("smp", True, draw, rate))
    age_at_send = send_at - closed_at
    if age_at_send > facts.freshness:
        # A survey that would be released stale is never held: it would only take a slot.
        add(("frs", False, age_at_send, facts.freshness_hours))
        return _A.NONE, (_R.STALE_EVENT,), tuple(records), None, gone
    add(("frs", True, age_at_send, facts.freshness_hours))

    blockers: list[Reason] = []
    if released:
        record = _survey_record(released, facts, now)
        cooldown_end = record.cooldown_end
        cooled = cooldown_end is None or send_at >= cooldown_end
        add(("cdn", cooled, record.last_response, facts.cooldown_days, cooldown_end))
        if not cooled:
            blockers.append(_R.SURVEY_COOLDOWN_AFTER_RESPONSE)
        fatigue_end = record.fatigue_end
        fatigued = fatigue_end is not None and send_at < fatigue_end
        add(
            ("fat", not fatigued, record.ignored_in_a_row, *facts.fatigue_figures, fatigue_end, facts.ignore_after_days)
        )
        if fatigued:
            blockers.append(_R.SURVEY_FATIGUE)
    else:
        add(facts.no_response_record)
        add(facts.no_fatigue_record)
    if surveys:
        surveys.sort()
    if not surveys:
        records += facts.no_survey_caps
    elif _cap_checks(_A.SURVEY, surveys, facts.survey_caps, send_at, add):
        blockers.append(_R.SURVEY_CAP_REACHED)
    everything = sorted(surveys + callbacks) if callbacks else surveys
    if facts.any_caps and _cap_checks(ANY_KIND, everything, facts.any_caps, send_at, add):
        blockers.append(_R.CONTACT_CAP_REACHED)
    gap = facts.gap
    if everything and gap and bisect_left(everything, send_at + gap) != bisect_right(everything, send_at - gap):
        add(_gap_blocked(ledger, superseded, everything, facts.gap_hours, send_at))
        blockers.append(_R.CONTACT_COOLDOWN)
    else:
        add(facts.no_gap_record)
    if blockers:
        return _A.NONE, tuple(blockers), tuple(records), None, gone
    return _A.SURVEY, (_R.SURVEY_ELIGIBLE, *extra), tuple(records), send_at, gone


# Records that say the same for every decision (records are immutable: shared, not rebuilt).
_NOTHING_SUPERSEDED: Record = ("sup", True, (), ())
_NO_OPT_OUT: Record = ("opt", True, None, None)
_NO_EARLIER: Record = ("one", True, None, None)
_NO_TRIGGERS: Record = ("trg", True, ())
_CALLBACKS_ON: Record = ("cbe", True)
_CALLBACKS_OFF: Record = ("cbe", False)
_SURVEYS_ON: Record = ("sve", True)
_SURVEYS_OFF: Record = ("sve", False)
_NO_CALLBACK_OPT_OUT: Record = ("kop", True, "callback", None, None)
_NO_SURVEY_OPT_OUT: Record = ("kop", True, "survey", None, None)


class SurveyRecord(NamedTuple):
    """What the customer did with their released surveys, and the pauses it starts."""

    responses: int
    last_response: datetime | None
    ignored_in_a_row: int
    cooldown_end: datetime | None  # after the last response
    fatigue_end: datetime | None  # after a run of ignored surveys reaching the threshold


_NO_SURVEYS = SurveyRecord(responses=0, last_response=None, ignored_in_a_row=0, cooldown_end=None, fatigue_end=None)


def survey_record(ledger: ContactLedger, rules: Rules, now: datetime) -> SurveyRecord:
    """Responses and the current run of ignored surveys, newest first until a response.

    Ignored: released, delivered, and no response `ignore_after` after its send time. A survey
    still inside that window neither counts nor ends the run. Follow-ups stored before outcomes
    were collected (no `closed_at`) are never counted as ignored: nobody could answer them here."""
    released = [f for f in ledger.followups if f.kind is _A.SURVEY and f.state != PENDING]
    return _survey_record(released, _facts(rules), now) if released else _NO_SURVEYS


def _survey_record(surveys: list[FollowUp], facts: _Facts, now: datetime) -> SurveyRecord:
    """survey_record of the released surveys."""
    answered = [f.responded_at for f in surveys if f.responded_at is not None]
    last = max(answered, default=None)
    cooldown = facts.cooldown
    ignore_after = facts.ignore_after
    run, newest_end = 0, None
    for f in sorted(surveys, key=_NEWEST_FIRST, reverse=True):
        if f.responded_at is not None:
            break
        window_end = f.send_at + ignore_after
        if f.delivery_failed or f.closed_at is None or window_end > now:
            continue
        run += 1
        newest_end = newest_end or window_end
    fatigue_end = None
    fatigue = facts.fatigue
    if newest_end is not None and run >= fatigue.ignored_in_a_row and fatigue.pause_days > 0:
        fatigue_end = newest_end + facts.pause
    return SurveyRecord(
        len(answered), last, run, last + cooldown if last is not None and cooldown else None, fatigue_end
    )


_NEWEST_FIRST = attrgetter("send_at", "decision_id")


def recheck(
    followup: FollowUp | None, decision: Decision, ledger: ContactLedger, policy: Policy, now: datetime
) -> tuple[State, CancelReason | None, Explanation]:
    """The release-time check of a pending follow-up against what happened since its decision.

    `followup` is the decision's entry in the current `ledger` (None when it is not there any
    more). Released (None) when every check passes, else cancelled with the first failing reason."""
    records: list[Record] = []
    add = records.append

    def cancel(reason: CancelReason) -> tuple[State, CancelReason | None, Explanation]:
        return _S.CANCELLED, reason, Explanation(tuple(records))

    now = now.astimezone(UTC)
    if followup is not None and not followup.pending:
        add(("pnd", True, decision.decision_id, True))
        return _S.RELEASED, None, Explanation(tuple(records))
    add(("pnd", followup is not None, decision.decision_id, False))
    if followup is None:
        return cancel(_C.SUPERSEDED_BY_NEWER_INTERACTION)
    kind = str(decision.action)
    opt_out = ledger.opted_out_of(kind)
    if opt_out is not None:
        add(("rop", False, kind, opt_out.source, opt_out.at))
        return cancel(_C.OPTED_OUT)
    add(("rop", True, kind, None, None))
    given = decision.input
    rules, scope = policy.rules_for(given.segment, given.brand, given.channel)
    if decision.action is _A.SURVEY:
        closed_at = followup.closed_at if followup.closed_at else given.closed_at
        age = now - closed_at
        fresh = age <= rules.survey_freshness
        add(("rfr", fresh, age, rules.survey_freshness_hours))
        if not fresh:
            return cancel(_C.EXPIRED)
    enabled = rules.enabled.survey if decision.action is _A.SURVEY else rules.enabled.callback
    excluded = decision.action is _A.SURVEY and given.segment in policy.excluded_segments
    add(("pol", enabled and not excluded, policy.version, scope, kind, enabled, excluded, given.segment))
    if not enabled or excluded:
        return cancel(_C.POLICY_FORBIDS)
    return _S.RELEASED, None, Explanation(tuple(records))


def _opted_out(ledger: ContactLedger, kind: str, add: Callable[[Record], None]) -> bool:
    opt_out = ledger.opted_out_of(kind)
    if opt_out is None:
        add(("kop", True, kind, None, None))
        return False
    add(("kop", False, kind, opt_out.source, opt_out.at))
    return True


def _callback_triggers(event: InteractionClosed, rules: Rules) -> list[Reason]:
    return _triggers(event.__dict__, _facts(rules))


def _triggers(given: dict[str, Any], facts: _Facts) -> list[Reason]:
    """The callback triggers the event (its fields) meets: signals that the problem is not solved."""
    found: list[Reason] = []
    outcome = given["outcome"]
    if outcome in facts.trigger_outcomes:
        found.append(_R.CALLBACK_ESCALATED if outcome == "escalated" else _R.CALLBACK_UNRESOLVED)
    limit = facts.sentiment_at_or_below
    if limit is not None and (sentiment := given["sentiment"]) is not None and sentiment <= limit:
        found.append(_R.CALLBACK_NEGATIVE_SENTIMENT)
    limit = facts.attempts_at_least
    if limit is not None and (attempts := given["contact_attempts"]) is not None and attempts >= limit:
        found.append(_R.CALLBACK_REPEAT_CONTACT)
    limit = facts.reopens_at_least
    if limit is not None and (reopens := given["reopen_count"]) is not None and reopens >= limit:
        found.append(_R.CALLBACK_REOPENED)
    return found


ANY_KIND = "follow-up"


def _cap_checks(
    kind: str, taken: list[datetime], caps: tuple[_Cap, ...], send_at: datetime, add: Callable[[Record], None]
) -> bool:
    """Checks every sliding window of `kind` (`taken`: its send times, sorted); True when one of
    them is full."""
    blocked = False
    size = len(taken)
    for cap, span, label in caps:
        lo = bisect_right(taken, send_at - span)
        hi = bisect_right(taken, send_at, lo)
        if hi == size:
            # Nothing after send_at (the usual ledger): the busiest window holding it starts at
            # the oldest follow-up in (send_at - span, send_at] and holds every later one.
            in_window = recent = hi - lo
        else:
            in_window, recent = _loads(taken, span, send_at)
        if in_window < cap:
            add(("cap", True, kind, label, in_window, cap, None, in_window == recent))
        else:
            blocked = True
            # Follow-ups scheduled after this send time (deferred by quiet hours) can fill the
            # window too: the sentence says which count it is.
            next_ok = _next_allowed(taken, span, cap, send_at, full_at_send=True)
            add(("cap", False, kind, label, in_window, cap, next_ok, in_window == recent))
    return blocked


def _gap_blocked(
    ledger: ContactLedger, superseded: list[FollowUp], taken: list[datetime], gap_hours: int, send_at: datetime
) -> Record:
    """The record of the minimum gap check a follow-up near send_at failed (`taken`: the send
    times that count, sorted). Rare, so written as plainly as the rule: in the ledger's order (the
    nearest of two equally near follow-ups is the one listed first)."""
    gap = timedelta(hours=gap_hours)
    counted = [f.send_at for f in ledger.followups if f not in superseded and f.counts_against_caps]
    close = [t for t in counted if abs(send_at - t) < gap]
    nearest = min(close, key=lambda t: abs(send_at - t))
    # The first time at least `gap` away from every follow-up, later ones included.
    next_ok = max(close) + gap
    while blocking := [t for t in taken if abs(next_ok - t) < gap]:
        next_ok = max(blocking) + gap
    return "gap", False, gap_hours, max(close), next_ok, nearest


def _loads(taken: list[datetime], span: timedelta, send_at: datetime) -> tuple[int, int]:
    """window_load of sorted `taken`, and how many of them fall in (send_at - span, send_at]."""
    if not taken:
        return 0, 0
    lo = bisect_right(taken, send_at - span)
    hi = bisect_right(taken, send_at, lo)
    if hi == len(taken):
        # Nothing after send_at (the usual ledger): the busiest window holding it starts at the
        # oldest follow-up in (send_at - span, send_at] and holds every later one.
        return hi - lo, hi - lo
    best = bisect_left(taken, send_at + span, hi) - bisect_left(taken, send_at, lo, hi)
    if hi > lo:
        # A window starting at taken[i] holds taken[i:] up to start + span (`taken` is sorted, and
        # nothing before lo equals a start).
        best = max(
            best,
            *[bisect_left(taken, taken[i] + span, i) - bisect_left(taken, taken[i], lo, i + 1) for i in range(lo, hi)],
        )
    return best, hi - lo


def _next_allowed(
    taken: list[datetime], span: timedelta, cap: int, send_at: datetime, *, full_at_send: bool = False
) -> datetime | None:
    """The earliest time at or after `send_at` when one more follow-up fits (`taken` sorted).

    The candidates are send_at (skipped when the caller found it full) and the end of every
    window that still holds it, in time order. The load at a candidate c is the most of the window
    starting at c and those starting at a follow-up in (c - span, c]; the latter are counted once."""
    first = bisect_right(taken, send_at - span)
    later = taken[first:]
    size = len(taken)
    if not taken or taken[-1] <= send_at:
        # Nothing after send_at: at the end c of the window of a follow-up t, the load is the
        # follow-ups after t (nothing at or after c, all of them inside the window ending at t).
        if not full_at_send and size - first < cap:
            return send_at
        for n, t in enumerate(later, first):
            if size - bisect_right(taken, t, n) < cap:
                return t + span
        return None
    starting = [
        bisect_left(taken, t + span, first + n) - bisect_left(taken, t, first, first + n + 1)
        for n, t in enumerate(later)
    ]
    candidates = (t + span for t in later) if full_at_send else chain((send_at,), (t + span for t in later))
    for candidate in candidates:
        lo = bisect_right(taken, candidate - span, first)
        hi = bisect_right(taken, candidate, lo)
        load = bisect_left(taken, candidate + span, hi) - bisect_left(taken, candidate, lo, hi)
        if hi > lo:
            load = max(load, *starting[lo - first : hi - first])
        if load < cap:
            return candidate
    return None


def window_load(taken: list[datetime], span: timedelta, send_at: datetime) -> int:
    """The most follow-ups already in any window of length `span` that would also hold `send_at`.

    Windows are half-open [t, t + span). The busiest one containing `send_at` starts at `send_at`
    or at one of the follow-ups before it, so only those starts are checked (by bisection).
    """
    return _loads(sorted(taken), span, send_at)[0]


def next_allowed(taken: list[datetime], span: timedelta, cap: int, send_at: datetime) -> datetime | None:
    """The earliest time at or after `send_at` when one more follow-up fits this window."""
    return _next_allowed(sorted(taken), span, cap, send_at)


def sample_draw(interaction_id: str) -> float:
    """A deterministic draw in [0, 1): the same interaction always gets the same one."""
    digest = sha256(("survey-sample:" + interaction_id).encode()).digest()
    word: int = _FIRST_WORD.unpack_from(digest)[0]
    return word / 2**64


_FIRST_WORD = struct.Struct(">Q")


def next_outside_quiet_hours(now: datetime, zone: ZoneInfo, quiet: QuietHours) -> datetime:
    """`now` if it is outside quiet hours in `zone`, else the local end of quiet hours, in UTC."""
    return _outside_quiet_hours(now, zone, quiet.start, quiet.end)


def _outside_quiet_hours(now: datetime, zone: ZoneInfo, start: time, end: time) -> datetime:
    if start == end:
        return now
    local = now.astimezone(zone)
    clock = local.time()  # naive: the local wall clock
    if start > end:  # quiet hours span midnight, e.g. 20:00-09:00
        if clock >= start:
            end_day = local.date() + _ONE_DAY
        elif clock < end:
            end_day = local.date()
        else:
            return now
    elif start <= clock < end:
        end_day = local.date()
    else:
        return now
    # A wall time inside a DST gap does not exist; the UTC round trip moves it to a real instant.
    resolved = datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)
    return resolved if resolved >= now else now


_ONE_DAY = timedelta(days=1)
_new_model = object.__new__
_ZONES: dict[str, ZoneInfo] = {}
