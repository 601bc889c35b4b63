"""The sentence of each rule an explanation holds, and the stored form of its values.

The engine records one tuple per rule (shared.domain.explanation.Record): a template code, the
verdict and the rule's values. `TEMPLATES` says, per code, how a record becomes the RuleCheck a
reader sees (`render`) and how its values are stored in the decision log (`encode`, `decode`).
Loaded when an explanation is first rendered, encoded or decoded, not with the decision model
(shared.domain.explanation: a function's cold import does not compile these sentences).

Template codes are stored in the decision log: never reuse or change one, add a new code instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.explanation import (
    REASON_CODE,
    REASON_NAMES,
    Explanation,
    Record,
    RuleCheck,
    _check,
    _span_of,
    _span_value,
    format_utc,
    instant_of,
    instant_value,
)

# --- the sentences --------------------------------------------------------------------------------


def _short(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def _utc(moment: datetime | None) -> str | None:
    return format_utc(moment) if moment is not None else None


def _span(span: timedelta) -> str:
    """72 h 0 min 1 s: exact enough to see why a limit was crossed."""
    seconds = int(span.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours} h {minutes} min {seconds} s" if minutes or seconds else f"{hours} h"


def _hours(span: timedelta) -> float:
    return round(span.total_seconds() / 3600, 4)


def _count(n: int, kind: str) -> str:
    return f"{n} {kind}" + ("" if n == 1 else "s")


def _adjective(label: str) -> str:
    return label.replace("days", "day").replace("hours", "hour").replace(" ", "-")


def _on(flag: bool) -> str:
    return "enabled" if flag else "disabled"


class _Template:
    """How one rule's record becomes a RuleCheck, and how its values are stored.

    `signature` has one letter per value: s text, i int, n number, b flag, t instant, d span,
    S list of texts, R reason codes, k kind, K kinds, w window label, r sample draw (see _ENCODERS)."""

    __slots__ = ("figures", "message", "rule", "signature")

    def __init__(
        self,
        rule: str | Callable[..., str],
        signature: str,
        figures: Callable[..., dict[str, Any]],
        message: Callable[..., str],
    ) -> None:
        self.rule = rule
        self.signature = signature
        self.figures = figures
        self.message = message


def _supersedes_message(passed: bool, kinds: Sequence[str], ids: Sequence[str]) -> str:
    if not ids:
        return "no pending follow-up of an older interaction to cancel"
    return (
        "cancels pending " + ", ".join(f"{k} {i}" for k, i in zip(kinds, ids, strict=True)) + " (a newer interaction)"
    )


def _one_message(passed: bool, earlier: str | None, kind: str | None) -> str:
    if not passed:
        return f"interaction already got a {kind} ({earlier})"
    if earlier:
        return f"interaction got a survey ({earlier}) but came back unsolved: a callback may follow"
    return "no earlier follow-up"


def _cap_rule(kind: str, label: str, *_: Any) -> str:
    return f"{kind.replace('-', '_')}_cap_{label.replace(' ', '_')}"


def _cap_message(  # noqa: PLR0917 - a template takes its record's values in order
    passed: bool, kind: str, label: str, count: int, cap: int, next_ok: datetime | None, recent: bool
) -> str:
    where = f"in the last {label}" if recent else f"within one {_adjective(label)} window with this send time"
    message = f"{_count(count, kind)} {where}, cap {cap}"
    if not passed:
        message += f", next eligible {_short(next_ok) if next_ok else 'unknown'}"
    return message


def _gap_figures(gap: int, last: datetime | None, next_ok: datetime | None, nearest: datetime | None) -> dict[str, Any]:
    if last is None:
        return {"gap_hours": gap}
    return {"last_follow_up": _utc(last), "gap_hours": gap, "next_eligible": _utc(next_ok)}


def _gap_message(passed: bool, gap: int, last: datetime | None, next_ok: datetime | None, nearest: datetime) -> str:
    if passed:
        return f"no follow-up within {gap} h"
    assert next_ok is not None
    return f"a follow-up at {_short(nearest)}, surveys need {gap} h from any follow-up, next eligible {_short(next_ok)}"


def _policy_message(  # noqa: PLR0917 - a template takes its record's values in order
    passed: bool, version: int, scope: str, kind: str, enabled: bool, excluded: bool, segment: str | None
) -> str:
    if not enabled:
        verdict = f"{kind}s are disabled"
    elif excluded:
        verdict = f"segment {segment} is never surveyed"
    else:
        verdict = f"{kind}s allowed"
    return f"policy version {version} ({scope}): {verdict}"


def _no_figures(*_: Any) -> dict[str, Any]:
    return {}


TEMPLATES: dict[str, _Template] = {
    # decide()
    "sup": _Template("supersedes", "KS", lambda kinds, ids: {"decision_ids": list(ids)}, _supersedes_message),
    "opt": _Template(
        "opt_out",
        "st",
        _no_figures,
        lambda passed, source, at: (
            "no opt-out of all follow-ups"
            if passed
            else f"the customer opted out of all follow-ups ({source}, {_short(at)})"
        ),
    ),
    "one": _Template(
        "one_follow_up_per_interaction", "sk", lambda earlier, kind: {"earlier_decision_id": earlier}, _one_message
    ),
    "sko": _Template(
        "skip_outcomes",
        "s",
        lambda outcome: {"outcome": str(outcome)},
        lambda passed, outcome: (
            f"outcome {outcome} may get a follow-up" if passed else f"outcome {outcome} never gets a follow-up"
        ),
    ),
    "age": _Template(
        "max_event_age",
        "di",
        lambda age, limit: {"age_hours": _hours(age), "limit_hours": limit},
        lambda passed, age, limit: f"closed {_span(age)} ago, limit {limit} h",
    ),
    "dly": _Template(
        "survey_delay",
        "itb",
        lambda minutes, earliest, delayed: {"delay_minutes": minutes, "not_before": format_utc(earliest)},
        lambda passed, minutes, earliest, delayed: (
            f"surveys wait {minutes} min after the interaction closed: not before {_short(earliest)}"
            if delayed
            else f"closed more than {minutes} min ago: no delay"
        ),
    ),
    "qh": _Template(
        "quiet_hours",
        "stb",
        lambda zone, send_at, deferred: {"timezone": zone, "send_at": format_utc(send_at)},
        lambda passed, zone, send_at, deferred: (
            f"inside quiet hours in {zone}: send at {_short(send_at)}" if deferred else f"outside quiet hours in {zone}"
        ),
    ),
    "trg": _Template(
        "callback_triggers",
        "R",
        lambda triggers: {"triggers": [str(t) for t in triggers]},
        lambda passed, triggers: (
            "problem not solved: " + ", ".join(triggers) if triggers else "problem solved: no callback trigger"
        ),
    ),
    "cbe": _Template("callback_enabled", "", _no_figures, lambda passed: "callbacks are " + _on(passed)),
    "sve": _Template("survey_enabled", "", _no_figures, lambda passed: "surveys are " + _on(passed)),
    "kop": _Template(
        lambda kind, *_: f"{kind}_opt_out",
        "kst",
        _no_figures,
        lambda passed, kind, source, at: (
            f"no opt-out of {kind}s" if passed else f"the customer opted out of {kind}s ({source}, {_short(at)})"
        ),
    ),
    "cap": _Template(
        _cap_rule,
        "kwiitb",
        lambda kind, label, count, cap, next_ok, recent: {
            "count": count,
            "cap": cap,
            "window": label,
            "next_eligible": _utc(next_ok),
        },
        _cap_message,
    ),
    "seg": _Template(
        "excluded_segments",
        "s",
        lambda segment: {"segment": segment},
        lambda passed, segment: "segment may be surveyed" if passed else f"segment {segment} is never surveyed",
    ),
    "mht": _Template(
        "min_handle_time",
        "ii",
        lambda handled, minimum: {"handle_seconds": handled, "minimum_seconds": minimum},
        lambda passed, handled, minimum: (
            "long enough to survey" if passed else f"handled in {handled} s, surveys need {minimum} s"
        ),
    ),
    "smp": _Template(
        "survey_sample",
        "rn",
        lambda draw, rate: {"draw": round(draw, 6), "rate": rate},
        lambda passed, draw, rate: f"draw {draw:.4f} against sample rate {rate}",
    ),
    "frs": _Template(
        "survey_freshness",
        "di",
        lambda age, limit: {"age_at_send_hours": _hours(age), "limit_hours": limit},
        lambda passed, age, limit: f"would go out {_span(age)} after the interaction closed, limit {limit} h",
    ),
    "cdn": _Template(
        "survey_cooldown_after_response",
        "tit",
        lambda last, days, end: {"last_response": _utc(last), "cooldown_days": days, "next_eligible": _utc(end)},
        lambda passed, last, days, end: (
            "no survey response within the cooldown"
            if passed
            else f"answered a survey at {_short(last)}, no survey for {days} days after a response, "
            f"next eligible {_short(end)}"
        ),
    ),
    "fat": _Template(
        "survey_fatigue",
        "iiiti",
        lambda ignored, threshold, pause, end, ignore_after: {
            "ignored_in_a_row": ignored,
            "threshold": threshold,
            "pause_days": pause,
            "next_eligible": _utc(end),
        },
        lambda passed, ignored, threshold, pause, end, ignore_after: (
            f"{ignored} surveys ignored in a row, threshold {threshold}"
            if passed
            else f"{ignored} surveys ignored in a row (no response within {ignore_after} days), threshold {threshold}: "
            f"no survey for {pause} days, next eligible {_short(end)}"
        ),
    ),
    "gap": _Template("min_gap_before_survey", "ittt", _gap_figures, _gap_message),
    # recheck()
    "pnd": _Template(
        "still_pending",
        "sb",
        lambda decision_id, released: {"decision_id": decision_id},
        lambda passed, decision_id, released: (
            "already released"
            if released
            else "still held in the contact ledger"
            if passed
            else "no longer held: a newer interaction superseded it"
        ),
    ),
    "rop": _Template(
        "opt_out",
        "kst",
        _no_figures,
        lambda passed, kind, source, at: (
            "no opt-out" if passed else f"the customer opted out of {kind}s ({source}, {_short(at)})"
        ),
    ),
    "rfr": _Template(
        "survey_freshness",
        "di",
        lambda age, limit: {"age_hours": _hours(age), "limit_hours": limit},
        lambda passed, age, limit: f"closed {_span(age)} ago, surveys go out within {limit} h",
    ),
    "pol": _Template(
        "policy_allows",
        "isksbs",
        lambda version, scope, kind, enabled, excluded, segment: {"policy_version": version, "policy_scope": scope},
        _policy_message,
    ),
}


def render(record: Record) -> RuleCheck:
    """The RuleCheck of one record: its rule name, verdict, sentence and public figures."""
    code, passed, *values = record
    template = TEMPLATES[code]
    rule = template.rule if isinstance(template.rule, str) else template.rule(*values)
    return _check(rule, passed, template.message(passed, *values), template.figures(*values))


# --- the stored form ------------------------------------------------------------------------------
# An explanation is stored as a list with one entry per rule: [code, *values] (the code in upper
# case when the rule failed), values as the template's signature says, instants as seconds from a
# base instant (the decision time), trailing nulls left out. A RuleCheck that no record describes
# (read from an older entry) is stored whole: ["=", rule, passed, message, figures].

_KINDS = {"survey": "s", "callback": "c", "follow-up": "f"}
_KIND_NAMES = {v: k for k, v in _KINDS.items()}
_UNITS = {"days": "d", "hours": "h"}
_UNIT_NAMES = {v: k for k, v in _UNITS.items()}


def _label_value(label: str) -> str:
    number, _, unit = label.partition(" ")
    return number + _UNITS[unit] if number.isdigit() and unit in _UNITS else label


def _label_of(value: str) -> str:
    if " " in value or value[-1:] not in _UNIT_NAMES:
        return value
    return f"{value[:-1]} {_UNIT_NAMES[value[-1]]}"


def _draw_value(draw: float) -> float:
    # Six decimals are what the figures show; kept whole when they would print another sentence.
    short = round(draw, 6)
    return short if f"{short:.4f}" == f"{draw:.4f}" else draw


def _same(value: Any, base: datetime) -> Any:
    return value


def _listed(value: Any, base: datetime) -> Any:
    return list(value) or None


def _tupled(value: Any, base: datetime) -> Any:
    return tuple(value) if value is not None else ()


_ENCODERS: dict[str, Callable[[Any, datetime], Any]] = {
    "s": _same,
    "i": _same,
    "n": _same,
    "b": lambda v, base: 1 if v else 0,
    "t": instant_value,
    "d": lambda v, base: _span_value(v),
    "S": _listed,
    "R": lambda v, base: [REASON_CODE[r] for r in v] or None,
    "k": lambda v, base: _KINDS.get(v, v) if v is not None else None,
    "K": lambda v, base: "".join(_KINDS[k] for k in v) or None,
    "w": lambda v, base: _label_value(v),
    "r": lambda v, base: _draw_value(v),
}
_DECODERS: dict[str, Callable[[Any, datetime], Any]] = {
    "s": _same,
    "i": _same,
    "n": _same,
    "b": lambda v, base: bool(v),
    "t": instant_of,
    "d": lambda v, base: _span_of(v),
    "S": _tupled,
    "R": lambda v, base: tuple(REASON_NAMES[r] for r in v) if v is not None else (),
    "k": lambda v, base: _KIND_NAMES.get(v, v) if v is not None else None,
    "K": lambda v, base: tuple(_KIND_NAMES[k] for k in v) if v is not None else (),
    "w": lambda v, base: _label_of(v),
    "r": _same,
}


def encode(explanation: Sequence[RuleCheck], base: datetime) -> list[Any]:
    """The stored form of an explanation (see above); `base` is the instant times are counted from."""
    records = explanation.records if isinstance(explanation, Explanation) else None
    if records is None:
        # Figures as their JSON (what the full form stored): any value a RuleCheck may hold.
        return [
            ["=", c.rule, 1 if c.passed else 0, c.message, c.model_dump(mode="json")["figures"]] for c in explanation
        ]
    stored = []
    for code, passed, *values in records:
        entry = [code if passed else code.upper()]
        entry += [_ENCODERS[kind](value, base) for kind, value in zip(TEMPLATES[code].signature, values, strict=True)]
        while entry[-1] is None:
            entry.pop()
        stored.append(entry)
    return stored


def decode(stored: list[Any], base: datetime) -> Explanation:
    """The explanation `encode` stored."""
    if stored and stored[0][0] == "=":
        return Explanation.of_checks(
            [_check(rule, bool(passed), message, figures) for _, rule, passed, message, figures in stored]
        )
    records = []
    for code, *given in stored:
        name = code.lower()
        signature = TEMPLATES[name].signature
        values = given + [None] * (len(signature) - len(given))
        records.append((name, code == name, *(_DECODERS[k](v, base) for k, v in zip(signature, values, strict=True))))
    return Explanation(tuple(records))
