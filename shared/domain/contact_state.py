"""A customer's contact state under the current policy: what each window counts, when a survey
and a callback would next be allowed, opt-outs. Computed from the ledger by the engine's own
window arithmetic, so it cannot disagree with decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.domain.contacts import ContactLedger
from shared.domain.decision import Action, format_utc
from shared.domain.engine import ANY_KIND, next_allowed, window_load
from shared.domain.policy import Policy, Window


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


def contact_state(ledger: ContactLedger, policy: Policy, now: datetime) -> dict[str, Any]:
    surveys, callbacks, everything = ledger.of_kind(Action.SURVEY), ledger.of_kind(Action.CALLBACK), ledger.all_sends()
    windows = (
        _windows("survey", surveys, policy.caps.survey, now)
        + _windows("callback", callbacks, policy.caps.callback, now)
        + _windows(ANY_KIND, everything, policy.caps.any, now)
    )
    gap = policy.min_gap_before_survey
    survey_gap_until = max((t + gap for t in everything if abs(now - t) < gap), default=now)

    def next_time(kind: str, extra: datetime | None = None) -> str | None:
        if ledger.opted_out_of(kind):
            return None
        candidates = [
            datetime.fromisoformat(w["next_allowed"])
            for w in windows
            if w["kind"] in (kind, ANY_KIND) and w["next_allowed"]
        ]
        if any(w["next_allowed"] is None for w in windows if w["kind"] in (kind, ANY_KIND)):
            return None
        return format_utc(max([now, *candidates, *([extra] if extra else [])]))

    return {
        "customer_id": ledger.customer_id,
        "policy_version": policy.version,
        "as_of": format_utc(now),
        "windows": windows,
        "next_survey_allowed": next_time("survey", survey_gap_until),
        "next_callback_allowed": next_time("callback"),
        "opt_outs": [{"kind": o.kind, "source": o.source, "at": format_utc(o.at)} for o in ledger.opt_outs],
        "recent_follow_ups": [
            {
                "kind": str(f.kind),
                "send_at": format_utc(f.send_at),
                "interaction_id": f.interaction_id,
                "decision_id": f.decision_id,
            }
            for f in sorted(ledger.followups, key=lambda f: f.send_at, reverse=True)
        ],
    }
