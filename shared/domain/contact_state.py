"""A customer's contact state under the current policy: what each window counts, when a survey
and a callback would next be allowed, opt-outs, the follow-ups held until their send time, and
the customer's survey record (responses, ignored run, cooldown and fatigue ends). Computed from
the ledger with the rules the engine would apply (`Policy.rules_for`, overrides included) and the
engine's own window arithmetic and survey record, so it cannot disagree with decisions.

Contact state has no event, so the caller says which interactions it is about (segment, brand,
channel): the admin API takes them from the query, else from the customer's latest decision.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.domain.contacts import ContactLedger
from shared.domain.decision import Action, format_utc
from shared.domain.engine import ANY_KIND, next_allowed, survey_record, window_load
from shared.domain.policy import Base, Policy, Window

# Each round moves past one blocking follow-up; a ledger holds at most a few hundred.
_MAX_ROUNDS = 1000


def _windows(kind: str, taken: list[datetime], windows: tuple[Window, ...], now: datetime) -> list[dict[str, Any]]:
    rows = []
    for window in windows:
        load = window_load(taken, window.length, now)
        allowed = now if load < window.max else next_allowed(taken, window.length, window.max, now)
        rows.append(
            {
                "kind": kind,
                "window": window.label,
                "cap": window.max,
                "count": load,
                "next_allowed": format_utc(allowed) if allowed else None,
            }
        )
    return rows


def _next_time(ledger: ContactLedger, rules: Base, kind: Action, now: datetime) -> datetime | None:
    """The earliest time at or after `now` when every cap of `kind` (and the survey gap) lets one
    more through, as the engine checks them at a send time; None when no time will."""
    own = ledger.of_kind(kind)
    windows = [(w, own) for w in (rules.caps.survey if kind is Action.SURVEY else rules.caps.callback)]
    windows += [(w, ledger.all_sends()) for w in rules.caps.any]
    gap = rules.min_gap_before_survey if kind is Action.SURVEY else timedelta(0)
    moment = now
    for _ in range(_MAX_ROUNDS):
        later = moment
        for window, taken in windows:
            if window_load(taken, window.length, moment) >= window.max:
                allowed = next_allowed(taken, window.length, window.max, moment)
                if allowed is None:
                    return None
                later = max(later, allowed)
        # The gap is measured from follow-ups on both sides (deferred ones can be later).
        later = max([later, *(t + gap for t in ledger.all_sends() if abs(moment - t) < gap)])
        if later == moment:  # every rule passes here
            return moment
        moment = later
    return None


SCOPE_KEYS = ("segment", "brand", "channel")


def scope_for(entries: list[dict[str, Any]], asked: dict[str, str | None]) -> dict[str, str | None]:
    """Which interactions the state is about: what the admin asked for (any key given), else the
    segment, brand and channel of the customer's latest decision (`entries`: newest first, as
    stored), else none (the base rules). `from` says which, so the answer is never ambiguous."""
    if any(asked.get(k) for k in SCOPE_KEYS):
        return {**{k: asked.get(k) for k in SCOPE_KEYS}, "from": "query"}
    latest = next((e["input"] for e in entries if isinstance(e.get("input"), dict)), None)
    if latest is not None:
        return {**{k: latest.get(k) for k in SCOPE_KEYS}, "from": "latest_decision"}
    return {**dict.fromkeys(SCOPE_KEYS), "from": "none"}


def contact_state(
    ledger: ContactLedger, policy: Policy, now: datetime, scope: dict[str, str | None] | None = None
) -> dict[str, Any]:
    scope = scope or {**dict.fromkeys(SCOPE_KEYS), "from": "none"}
    segment = scope.get("segment")
    rules, label = policy.rules_for(segment, scope.get("brand"), scope.get("channel"))
    surveys, callbacks, everything = ledger.of_kind(Action.SURVEY), ledger.of_kind(Action.CALLBACK), ledger.all_sends()
    windows = (
        _windows("survey", surveys, rules.caps.survey, now)
        + _windows("callback", callbacks, rules.caps.callback, now)
        + _windows(ANY_KIND, everything, rules.caps.any, now)
    )
    never_surveyed = not rules.enabled.survey or (segment is not None and segment in policy.excluded_segments)

    record = survey_record(ledger, rules, now)
    # A survey also waits for the end of a response cooldown or of a fatigue pause.
    survey_from = max([now, *(t for t in (record.cooldown_end, record.fatigue_end) if t is not None)])

    def next_time(kind: Action, blocked: bool) -> str | None:
        if blocked or ledger.opted_out_of(str(kind)):
            return None
        moment = _next_time(ledger, rules, kind, survey_from if kind is Action.SURVEY else now)
        return format_utc(moment) if moment else None

    def at(moment: datetime | None) -> str | None:
        return format_utc(moment) if moment is not None else None

    return {
        "customer_id": ledger.customer_id,
        "policy_version": policy.version,
        "scope": scope,
        "policy_scope": label,
        "as_of": format_utc(now),
        "windows": windows,
        "next_survey_allowed": next_time(Action.SURVEY, never_surveyed),
        "next_callback_allowed": next_time(Action.CALLBACK, not rules.enabled.callback),
        "opt_outs": [{"kind": o.kind, "source": o.source, "at": format_utc(o.at)} for o in ledger.opt_outs],
        # Held until their send time, then re-checked and released or cancelled.
        "pending_follow_ups": [
            {
                "decision_id": f.decision_id,
                "kind": str(f.kind),
                "send_at": format_utc(f.send_at),
                "interaction_id": f.interaction_id,
            }
            for f in sorted(ledger.pending(), key=lambda f: (f.send_at, f.decision_id))
        ],
        # What the customer did with their surveys, and the pauses it started.
        "survey_record": {
            "responses": record.responses,
            "last_response": at(record.last_response),
            "ignored_in_a_row": record.ignored_in_a_row,
            "ignored_threshold": rules.fatigue.ignored_in_a_row,
            "cooldown_until": at(record.cooldown_end if record.cooldown_end and record.cooldown_end > now else None),
            "fatigue_until": at(record.fatigue_end if record.fatigue_end and record.fatigue_end > now else None),
        },
        "recent_follow_ups": [
            {
                "kind": str(f.kind),
                "send_at": format_utc(f.send_at),
                "interaction_id": f.interaction_id,
                "decision_id": f.decision_id,
                "state": f.state,
                "responded_at": at(f.responded_at),
                "reached": f.reached,
                "resolved": f.resolved,
                "delivery_failed": f.delivery_failed,
                "counts_against_caps": f.counts_against_caps,
            }
            for f in sorted(ledger.followups, key=lambda f: f.send_at, reverse=True)
        ],
    }
