"""The pure decision engine: event + contact ledger + policy + now -> one decision.

No I/O and no clock reading here, so it can be tested exhaustively and replayed for simulation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.domain.contacts import ContactLedger, FollowUp
from shared.domain.decision import (
    Action,
    CancelReason,
    Decision,
    DecisionInput,
    Reason,
    RuleCheck,
    State,
    decision_id_for,
    format_utc,
)
from shared.domain.events import InteractionClosed, Outcome
from shared.domain.policy import Base as Rules
from shared.domain.policy import Policy, QuietHours, Window


def decide(event: InteractionClosed, ledger: ContactLedger, policy: Policy, now: datetime) -> Decision:
    """Decides `event`. Pending follow-ups this newer interaction supersedes are cancelled by the
    same decision (`supersedes`), and it is decided with their slots free."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    rules, scope = policy.for_event(event)
    superseded = supersedable(event, ledger, rules)
    action, reasons, checks, send_at = _evaluate(
        event,
        ledger.without(f.decision_id for f in superseded),
        rules,
        policy.excluded_segments,
        now,
        superseded=superseded,
    )
    if action is Action.NONE:
        state = State.SUPPRESSED
    else:
        state = State.PENDING if send_at is not None and send_at > now else State.RELEASED
    return Decision(
        decision_id=decision_id_for(event.customer_id, event.event_id),
        event_id=event.event_id,
        interaction_id=event.interaction_id,
        customer_id=event.customer_id,
        action=action,
        reasons=tuple(reasons),
        explanation=tuple(checks),
        policy_version=policy.version,
        policy_scope=scope,
        send_at=send_at if action is not Action.NONE else None,
        decided_at=now,
        input=DecisionInput.of(event),
        state=state,
        state_changed_at=now,
        supersedes=tuple(f.decision_id for f in superseded),
    )


def supersedable(event: InteractionClosed, ledger: ContactLedger, rules: Rules) -> tuple[FollowUp, ...]:
    """The pending follow-ups that `event` (an interaction that closed after theirs) makes moot:
    a pending survey by any newer interaction of the customer; a pending callback by a newer one
    that was not abandoned (an abandoned attempt to reach us makes the callback more needed).
    And a pending survey of this very interaction, re-closed with a callback trigger: the
    customer has told us the problem is not solved, so "how did we do?" is the wrong question."""
    found = []
    for f in ledger.pending():
        if f.closed_at is None or f.closed_at >= event.closed_at:
            continue  # not older: an event arriving out of order never cancels a later one
        if f.interaction_id == event.interaction_id:
            moot = f.kind is Action.SURVEY and bool(_callback_triggers(event, rules))
        else:
            moot = f.kind is Action.SURVEY or event.outcome is not Outcome.ABANDONED
        if moot:
            found.append(f)
    return tuple(found)


_Verdict = tuple[Action, list[Reason], list[RuleCheck], datetime | None]


def _evaluate(
    event: InteractionClosed,
    ledger: ContactLedger,
    policy: Rules,
    excluded_segments: frozenset[str],
    now: datetime,
    *,
    superseded: tuple[FollowUp, ...] = (),
) -> _Verdict:
    checks: list[RuleCheck] = []

    def gate(rule: str, passed: bool, message: str, **figures: object) -> bool:
        checks.append(RuleCheck(rule=rule, passed=passed, message=message, figures=figures))
        return passed

    def stop(reason: Reason) -> _Verdict:
        return Action.NONE, [reason], checks, None

    gate(
        "supersedes",
        True,
        "cancels pending " + ", ".join(f"{f.kind} {f.decision_id}" for f in superseded) + " (a newer interaction)"
        if superseded
        else "no pending follow-up of an older interaction to cancel",
        decision_ids=[f.decision_id for f in superseded],
    )

    everything = ledger.opted_out_of("all")
    if not gate(
        "opt_out",
        everything is None,
        f"the customer opted out of all follow-ups ({everything.source}, {_short(everything.at)})"
        if everything
        else "no opt-out of all follow-ups",
    ):
        return stop(Reason.OPTED_OUT)

    # One follow-up per interaction, except that a surveyed interaction which comes back unsolved
    # may still get its one callback: never a second survey, never a second callback.
    triggers = _callback_triggers(event, policy)
    earlier = ledger.of_interaction(event.interaction_id)
    callback = next((f for f in earlier if f.kind is Action.CALLBACK), None)
    survey = next((f for f in earlier if f.kind is Action.SURVEY), None)
    blocking = callback or (survey if not triggers else None)
    if blocking:
        message = f"interaction already got a {blocking.kind} ({blocking.decision_id})"
    elif survey:
        message = f"interaction got a survey ({survey.decision_id}) but came back unsolved: a callback may follow"
    else:
        message = "no earlier follow-up"
    first = blocking or survey
    if not gate(
        "one_follow_up_per_interaction",
        blocking is None,
        message,
        earlier_decision_id=first.decision_id if first else None,
    ):
        return stop(Reason.ALREADY_FOLLOWED_UP)

    if not gate(
        "skip_outcomes",
        event.outcome not in policy.skip.outcomes,
        f"outcome {event.outcome} never gets a follow-up"
        if event.outcome in policy.skip.outcomes
        else f"outcome {event.outcome} may get a follow-up",
        outcome=str(event.outcome),
    ):
        return stop(Reason.ABANDONED_INTERACTION)

    age = now - event.closed_at
    max_age = timedelta(hours=policy.skip.max_event_age_hours)
    if not gate(
        "max_event_age",
        age <= max_age,
        f"closed {_span(age)} ago, limit {policy.skip.max_event_age_hours} h",
        age_hours=round(age.total_seconds() / 3600, 4),
        limit_hours=policy.skip.max_event_age_hours,
    ):
        return stop(Reason.STALE_EVENT)

    extra: list[Reason] = []
    earliest = now
    if not triggers:
        # Surveys wait a while after the interaction, so a quick re-contact can still cancel them.
        earliest = max(now, event.closed_at + policy.survey_delay)
        if earliest > now:
            extra.append(Reason.SURVEY_DELAYED)
        gate(
            "survey_delay",
            True,
            f"surveys wait {policy.survey_delay_minutes} min after the interaction closed: "
            f"not before {_short(earliest)}"
            if earliest > now
            else f"closed more than {policy.survey_delay_minutes} min ago: no delay",
            delay_minutes=policy.survey_delay_minutes,
            not_before=format_utc(earliest),
        )
    timezone, send_at = _send_time(event, policy.quiet_hours, earliest)
    deferred = send_at > earliest
    gate(
        "quiet_hours",
        True,
        f"inside quiet hours in {timezone}: send at {_short(send_at)}"
        if deferred
        else f"outside quiet hours in {timezone}",
        timezone=timezone,
        send_at=format_utc(send_at),
    )
    if deferred:
        extra.append(Reason.QUIET_HOURS_DEFERRED)

    gate(
        "callback_triggers",
        True,
        "problem not solved: " + ", ".join(triggers) if triggers else "problem solved: no callback trigger",
        triggers=[str(t) for t in triggers],
    )
    if triggers:
        # An unsolved problem never gets a survey: the answer is a callback or nothing.
        if not gate("callback_enabled", policy.enabled.callback, "callbacks are " + _on(policy.enabled.callback)):
            return Action.NONE, [Reason.CALLBACK_DISABLED, *triggers], checks, None
        if _opted_out(ledger, "callback", gate):
            return Action.NONE, [Reason.OPTED_OUT, *triggers], checks, None
        blocked = _cap_checks(Action.CALLBACK, ledger.of_kind(Action.CALLBACK), policy.caps.callback, send_at, gate)
        if blocked:
            return Action.NONE, [Reason.CALLBACK_CAP_REACHED, *triggers], checks, None
        if _cap_checks(ANY_KIND, ledger.all_sends(), policy.caps.any, send_at, gate):
            return Action.NONE, [Reason.CONTACT_CAP_REACHED, *triggers], checks, None
        return Action.CALLBACK, [*triggers, *extra], checks, send_at

    if not gate("survey_enabled", policy.enabled.survey, "surveys are " + _on(policy.enabled.survey)):
        return stop(Reason.SURVEY_DISABLED)
    if _opted_out(ledger, "survey", gate):
        return stop(Reason.OPTED_OUT)
    segment_excluded = event.segment is not None and event.segment in excluded_segments
    if not gate(
        "excluded_segments",
        not segment_excluded,
        f"segment {event.segment} is never surveyed" if segment_excluded else "segment may be surveyed",
        segment=event.segment,
    ):
        return stop(Reason.SEGMENT_EXCLUDED)
    minimum = policy.skip.min_handle_seconds_for_survey
    too_short = minimum > 0 and event.handle_seconds is not None and event.handle_seconds < minimum
    if not gate(
        "min_handle_time",
        not too_short,
        f"handled in {event.handle_seconds} s, surveys need {minimum} s" if too_short else "long enough to survey",
        handle_seconds=event.handle_seconds,
        minimum_seconds=minimum,
    ):
        return stop(Reason.SHORT_INTERACTION)
    draw = sample_draw(event.interaction_id)
    if not gate(
        "survey_sample",
        draw < policy.survey_sample_rate,
        f"draw {draw:.4f} against sample rate {policy.survey_sample_rate}",
        draw=round(draw, 6),
        rate=policy.survey_sample_rate,
    ):
        return stop(Reason.NOT_SAMPLED)
    age_at_send = send_at - event.closed_at
    if not gate(
        "survey_freshness",
        age_at_send <= policy.survey_freshness,
        f"would go out {_span(age_at_send)} after the interaction closed, limit {policy.survey_freshness_hours} h",
        age_at_send_hours=round(age_at_send.total_seconds() / 3600, 4),
        limit_hours=policy.survey_freshness_hours,
    ):
        # A survey that would be released stale is never held: it would only take a slot.
        return stop(Reason.STALE_EVENT)

    blockers: list[Reason] = []
    record = survey_record(ledger, policy, now)
    cooldown_end = record.cooldown_end
    if not gate(
        "survey_cooldown_after_response",
        cooldown_end is None or send_at >= cooldown_end,
        f"answered a survey at {_short(record.last_response)}, no survey for "
        f"{policy.survey_cooldown_after_response_days} days after a response, next eligible {_short(cooldown_end)}"
        if record.last_response and cooldown_end and send_at < cooldown_end
        else "no survey response within the cooldown",
        last_response=format_utc(record.last_response) if record.last_response else None,
        cooldown_days=policy.survey_cooldown_after_response_days,
        next_eligible=format_utc(cooldown_end) if cooldown_end else None,
    ):
        blockers.append(Reason.SURVEY_COOLDOWN_AFTER_RESPONSE)
    fatigue_end = record.fatigue_end
    fatigued = fatigue_end is not None and send_at < fatigue_end
    if not gate(
        "survey_fatigue",
        not fatigued,
        f"{record.ignored_in_a_row} surveys ignored in a row (no response within "
        f"{policy.fatigue.ignore_after_days} days), threshold {policy.fatigue.ignored_in_a_row}: "
        f"no survey for {policy.fatigue.pause_days} days, next eligible {_short(fatigue_end)}"
        if fatigued and fatigue_end
        else f"{record.ignored_in_a_row} surveys ignored in a row, threshold {policy.fatigue.ignored_in_a_row}",
        ignored_in_a_row=record.ignored_in_a_row,
        threshold=policy.fatigue.ignored_in_a_row,
        pause_days=policy.fatigue.pause_days,
        next_eligible=format_utc(fatigue_end) if fatigue_end else None,
    ):
        blockers.append(Reason.SURVEY_FATIGUE)
    if _cap_checks(Action.SURVEY, ledger.of_kind(Action.SURVEY), policy.caps.survey, send_at, gate):
        blockers.append(Reason.SURVEY_CAP_REACHED)
    if _cap_checks(ANY_KIND, ledger.all_sends(), policy.caps.any, send_at, gate):
        blockers.append(Reason.CONTACT_CAP_REACHED)
    if not _gap_check(ledger.all_sends(), policy.min_gap_before_survey, send_at, gate):
        blockers.append(Reason.CONTACT_COOLDOWN)
    if blockers:
        return Action.NONE, blockers, checks, None
    return Action.SURVEY, [Reason.SURVEY_ELIGIBLE, *extra], checks, send_at


@dataclass(frozen=True)
class SurveyRecord:
    """What the customer did with their released surveys, and the pauses it starts."""

    responses: int
    last_response: datetime | None
    ignored_in_a_row: int
    cooldown_end: datetime | None  # after the last response
    fatigue_end: datetime | None  # after a run of ignored surveys reaching the threshold


def survey_record(ledger: ContactLedger, rules: Rules, now: datetime) -> SurveyRecord:
    """Responses and the current run of ignored surveys, newest first until a response.

    Ignored: released, delivered, and no response `ignore_after` after its send time. A survey
    still inside that window neither counts nor ends the run. Follow-ups stored before outcomes
    were collected (no `closed_at`) are never counted as ignored: nobody could answer them here."""
    surveys = [f for f in ledger.followups if f.kind is Action.SURVEY and not f.pending]
    answered = [f.responded_at for f in surveys if f.responded_at is not None]
    last = max(answered, default=None)
    cooldown = rules.survey_cooldown_after_response
    fatigue = rules.fatigue
    run, newest_end = 0, None
    for f in sorted(surveys, key=lambda f: (f.send_at, f.decision_id), reverse=True):
        if f.responded_at is not None:
            break
        window_end = f.send_at + fatigue.ignore_after
        if f.delivery_failed or f.closed_at is None or window_end > now:
            continue
        run += 1
        newest_end = newest_end or window_end
    fatigue_end = None
    if newest_end is not None and run >= fatigue.ignored_in_a_row and fatigue.pause_days > 0:
        fatigue_end = newest_end + fatigue.pause
    return SurveyRecord(
        responses=len(answered),
        last_response=last,
        ignored_in_a_row=run,
        cooldown_end=last + cooldown if last is not None and cooldown else None,
        fatigue_end=fatigue_end,
    )


def recheck(
    followup: FollowUp | None, decision: Decision, ledger: ContactLedger, policy: Policy, now: datetime
) -> tuple[State, CancelReason | None, tuple[RuleCheck, ...]]:
    """The release-time check of a pending follow-up against what happened since its decision.

    `followup` is the decision's entry in the current `ledger` (None when it is not there any
    more). Released (None) when every check passes, else cancelled with the first failing reason."""
    checks: list[RuleCheck] = []

    def gate(rule: str, passed: bool, message: str, **figures: object) -> bool:
        checks.append(RuleCheck(rule=rule, passed=passed, message=message, figures=figures))
        return passed

    def cancel(reason: CancelReason) -> tuple[State, CancelReason | None, tuple[RuleCheck, ...]]:
        return State.CANCELLED, reason, tuple(checks)

    now = now.astimezone(UTC)
    if followup is not None and not followup.pending:
        gate("still_pending", True, "already released", decision_id=decision.decision_id)
        return State.RELEASED, None, tuple(checks)
    if not gate(
        "still_pending",
        followup is not None,
        "still held in the contact ledger" if followup else "no longer held: a newer interaction superseded it",
        decision_id=decision.decision_id,
    ):
        return cancel(CancelReason.SUPERSEDED_BY_NEWER_INTERACTION)
    kind = str(decision.action)
    opt_out = ledger.opted_out_of(kind)
    if not gate(
        "opt_out",
        opt_out is None,
        f"the customer opted out of {kind}s ({opt_out.source}, {_short(opt_out.at)})" if opt_out else "no opt-out",
    ):
        return cancel(CancelReason.OPTED_OUT)
    given = decision.input
    rules, scope = policy.rules_for(given.segment, given.brand, given.channel)
    if decision.action is Action.SURVEY:
        closed_at = followup.closed_at if followup and followup.closed_at else given.closed_at
        age = now - closed_at
        if not gate(
            "survey_freshness",
            age <= rules.survey_freshness,
            f"closed {_span(age)} ago, surveys go out within {rules.survey_freshness_hours} h",
            age_hours=round(age.total_seconds() / 3600, 4),
            limit_hours=rules.survey_freshness_hours,
        ):
            return cancel(CancelReason.EXPIRED)
    enabled = rules.enabled.survey if decision.action is Action.SURVEY else rules.enabled.callback
    excluded = decision.action is Action.SURVEY and given.segment in policy.excluded_segments
    if not gate(
        "policy_allows",
        enabled and not excluded,
        f"policy version {policy.version} ({scope}): "
        + (
            f"{kind}s are disabled"
            if not enabled
            else f"segment {given.segment} is never surveyed"
            if excluded
            else f"{kind}s allowed"
        ),
        policy_version=policy.version,
        policy_scope=scope,
    ):
        return cancel(CancelReason.POLICY_FORBIDS)
    return State.RELEASED, None, tuple(checks)


def _opted_out(ledger: ContactLedger, kind: str, gate) -> bool:  # type: ignore[no-untyped-def]
    opt_out = ledger.opted_out_of(kind)
    message = (
        f"the customer opted out of {kind}s ({opt_out.source}, {_short(opt_out.at)})"
        if opt_out
        else f"no opt-out of {kind}s"
    )
    return not gate(f"{kind}_opt_out", opt_out is None, message)


def _callback_triggers(event: InteractionClosed, policy: Rules) -> list[Reason]:
    rules = policy.callback_triggers
    found: list[Reason] = []
    if event.outcome in rules.outcomes:
        found.append(Reason.CALLBACK_ESCALATED if event.outcome == "escalated" else Reason.CALLBACK_UNRESOLVED)
    sentiment, attempts, reopens = event.sentiment, event.contact_attempts, event.reopen_count
    if rules.sentiment_at_or_below is not None and sentiment is not None and sentiment <= rules.sentiment_at_or_below:
        found.append(Reason.CALLBACK_NEGATIVE_SENTIMENT)
    if (
        rules.contact_attempts_at_least is not None
        and attempts is not None
        and attempts >= rules.contact_attempts_at_least
    ):
        found.append(Reason.CALLBACK_REPEAT_CONTACT)
    if rules.reopen_count_at_least is not None and reopens is not None and reopens >= rules.reopen_count_at_least:
        found.append(Reason.CALLBACK_REOPENED)
    return found


ANY_KIND = "follow-up"


def _cap_checks(kind: str, taken: list[datetime], windows: Iterable[Window], send_at: datetime, gate) -> bool:  # type: ignore[no-untyped-def]
    """Checks every sliding window of `kind`; True when one of them is full."""
    blocked = False
    for window in windows:
        span = window.length
        in_window = window_load(taken, span, send_at)
        ok = in_window < window.max
        recent = sum(1 for t in taken if send_at - span < t <= send_at)
        # Follow-ups scheduled after this send time (deferred by quiet hours) can fill the window too.
        where = (
            f"in the last {window.label}"
            if in_window == recent
            else f"within one {_adjective(window.label)} window with this send time"
        )
        message = f"{_count(in_window, kind)} {where}, cap {window.max}"
        next_ok = None
        if not ok:
            next_ok = next_allowed(taken, span, window.max, send_at)
            message += f", next eligible {_short(next_ok) if next_ok else 'unknown'}"
        gate(
            f"{kind.replace('-', '_')}_cap_{window.label.replace(' ', '_')}",
            ok,
            message,
            count=in_window,
            cap=window.max,
            window=window.label,
            next_eligible=format_utc(next_ok) if next_ok else None,
        )
        blocked = blocked or not ok
    return blocked


def _gap_check(taken: list[datetime], gap: timedelta, send_at: datetime, gate) -> bool:  # type: ignore[no-untyped-def]
    close = [t for t in taken if abs(send_at - t) < gap]
    if not close:
        return bool(gate("min_gap_before_survey", True, f"no follow-up within {_hours(gap)} h", gap_hours=_hours(gap)))
    nearest = min(close, key=lambda t: abs(send_at - t))
    # The first time at least `gap` away from every follow-up, later ones included.
    next_ok = max(close) + gap
    while blocking := [t for t in taken if abs(next_ok - t) < gap]:
        next_ok = max(blocking) + gap
    return bool(
        gate(
            "min_gap_before_survey",
            False,
            f"a follow-up at {_short(nearest)}, surveys need {_hours(gap)} h from any follow-up, "
            f"next eligible {_short(next_ok)}",
            last_follow_up=format_utc(max(t for t in close)),
            gap_hours=_hours(gap),
            next_eligible=format_utc(next_ok),
        )
    )


def window_load(taken: list[datetime], span: timedelta, send_at: datetime) -> int:
    """The most follow-ups already in any window of length `span` that would also hold `send_at`.

    Windows are half-open [t, t + span). The busiest one containing `send_at` starts at `send_at`
    or at one of the follow-ups before it, so only those starts are checked.
    """
    starts = [send_at, *(t for t in taken if send_at - span < t <= send_at)]
    return max(sum(1 for t in taken if start <= t < start + span) for start in starts)


def next_allowed(taken: list[datetime], span: timedelta, cap: int, send_at: datetime) -> datetime | None:
    """The earliest time at or after `send_at` when one more follow-up fits this window."""
    for candidate in sorted({send_at, *(t + span for t in taken if t + span > send_at)}):
        if window_load(taken, span, candidate) < cap:
            return candidate
    return None


def sample_draw(interaction_id: str) -> float:
    """A deterministic draw in [0, 1): the same interaction always gets the same one."""
    digest = hashlib.sha256(("survey-sample:" + interaction_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _send_time(event: InteractionClosed, quiet: QuietHours | None, now: datetime) -> tuple[str, datetime]:
    zone_name = event.customer_timezone or (quiet.default_timezone if quiet else "UTC")
    if quiet is None:
        return zone_name, now
    return zone_name, next_outside_quiet_hours(now, ZoneInfo(zone_name), quiet)


def next_outside_quiet_hours(now: datetime, zone: ZoneInfo, quiet: QuietHours) -> datetime:
    """`now` if it is outside quiet hours in `zone`, else the local end of quiet hours, in UTC."""
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    start, end = quiet.start, quiet.end
    if start == end:
        return now
    if start > end:  # quiet hours span midnight, e.g. 20:00-09:00
        quiet_now = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    else:
        quiet_now = start <= clock < end
        end_day = local.date()
    if not quiet_now:
        return now
    wall = datetime.combine(end_day, end, tzinfo=zone)
    # A wall time inside a DST gap does not exist; the UTC round trip moves it to a real instant.
    resolved = wall.astimezone(UTC)
    return max(resolved, now)


def _hours(span: timedelta) -> int:
    return int(span.total_seconds() // 3600)


def _adjective(label: str) -> str:
    return label.replace("days", "day").replace("hours", "hour").replace(" ", "-")


def _span(span: timedelta) -> str:
    """72 h 0 min 1 s: exact enough to see why a limit was crossed."""
    seconds = int(span.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours} h {minutes} min {seconds} s" if minutes or seconds else f"{hours} h"


def _short(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def _count(n: int, kind: str) -> str:
    return f"{n} {kind}" + ("" if n == 1 else "s")


def _on(flag: bool) -> str:
    return "enabled" if flag else "disabled"
