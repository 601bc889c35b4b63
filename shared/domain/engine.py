"""The pure decision engine: event + contact ledger + policy + now -> one decision.

No I/O and no clock reading here, so it can be tested exhaustively and replayed for simulation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.domain.contacts import ContactLedger
from shared.domain.decision import (
    Action,
    Decision,
    DecisionInput,
    Reason,
    RuleCheck,
    decision_id_for,
    format_utc,
)
from shared.domain.events import InteractionClosed
from shared.domain.policy import Base as Rules
from shared.domain.policy import Policy, QuietHours, Window


def decide(event: InteractionClosed, ledger: ContactLedger, policy: Policy, now: datetime) -> Decision:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    rules, scope = policy.for_event(event)
    action, reasons, checks, send_at = _evaluate(event, ledger, rules, policy.excluded_segments, now)
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
    )


_Verdict = tuple[Action, list[Reason], list[RuleCheck], datetime | None]


def _evaluate(
    event: InteractionClosed, ledger: ContactLedger, policy: Rules, excluded_segments: frozenset[str], now: datetime
) -> _Verdict:
    checks: list[RuleCheck] = []

    def gate(rule: str, passed: bool, message: str, **figures: object) -> bool:
        checks.append(RuleCheck(rule=rule, passed=passed, message=message, figures=figures))
        return passed

    def stop(reason: Reason) -> _Verdict:
        return Action.NONE, [reason], checks, None

    everything = ledger.opted_out_of("all")
    if not gate(
        "opt_out",
        everything is None,
        f"the customer opted out of all follow-ups ({everything.source}, {_short(everything.at)})"
        if everything
        else "no opt-out of all follow-ups",
    ):
        return stop(Reason.OPTED_OUT)

    earlier = ledger.followed_up(event.interaction_id)
    if not gate(
        "one_follow_up_per_interaction",
        earlier is None,
        f"interaction already got a {earlier.kind} ({earlier.decision_id})" if earlier else "no earlier follow-up",
        earlier_decision_id=earlier.decision_id if earlier else None,
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

    timezone, send_at = _send_time(event, policy.quiet_hours, now)
    deferred = send_at > now
    gate(
        "quiet_hours",
        True,
        f"inside quiet hours in {timezone}: send at {_short(send_at)}"
        if deferred
        else f"outside quiet hours in {timezone}",
        timezone=timezone,
        send_at=format_utc(send_at),
    )
    extra = [Reason.QUIET_HOURS_DEFERRED] if deferred else []

    triggers = _callback_triggers(event, policy)
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

    blockers: list[Reason] = []
    if _cap_checks(Action.SURVEY, ledger.of_kind(Action.SURVEY), policy.caps.survey, send_at, gate):
        blockers.append(Reason.SURVEY_CAP_REACHED)
    if _cap_checks(ANY_KIND, ledger.all_sends(), policy.caps.any, send_at, gate):
        blockers.append(Reason.CONTACT_CAP_REACHED)
    if not _gap_check(ledger.all_sends(), policy.min_gap_before_survey, send_at, gate):
        blockers.append(Reason.CONTACT_COOLDOWN)
    if blockers:
        return Action.NONE, blockers, checks, None
    return Action.SURVEY, [Reason.SURVEY_ELIGIBLE, *extra], checks, send_at


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
