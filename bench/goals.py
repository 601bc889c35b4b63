"""Issue 12's goals as one `make bench` measures them: each a value, its target, the baseline it is
compared with (measured in the same run) and a verdict, under stable keys in
bench/results/latest.json (`goals`), printed as a table at the end of the run.

A goal whose section did not run (a --skip-... option) has value None, `measured` false and the
verdict "fail": nothing shows it holds.
"""

from __future__ import annotations

import operator
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

KEYS = (
    "cost_ratio_vs_naive",
    "dynamodb_usd_per_million",
    "engine_ratio_vs_validation",
    "cold_import_ratio_max",
    "simulation_100k_ratio_vs_baseline",
    "requests_per_event",
    "history_flatness",
    "local_replay_flatness",
)

AT_MOST, AT_LEAST = "<=", ">="
_COMPARE: dict[str, Callable[[float, float], bool]] = {AT_MOST: operator.le, AT_LEAST: operator.ge}


@dataclass(frozen=True)
class Target:
    goal: str  # what the issue asks, in a few words
    compare: str  # AT_MOST or AT_LEAST
    limit: float
    unit: str = "x"


TARGETS = {
    "cost_ratio_vs_naive": Target("list-price USD per million events, ours ÷ naive", AT_MOST, 0.6),
    "dynamodb_usd_per_million": Target("DynamoDB USD per million events (ours)", AT_MOST, 2.0, " USD"),
    "engine_ratio_vs_validation": Target("pure engine decisions/s ÷ pydantic validations/s", AT_LEAST, 0.6),
    "cold_import_ratio_max": Target("worst handler cold import ÷ boto3 + Powertools", AT_MOST, 1.3),
    "simulation_100k_ratio_vs_baseline": Target("simulation function work, 100k events ÷ today's", AT_MOST, 0.5),
    "requests_per_event": Target("DynamoDB requests per event, decide path", AT_MOST, 1.3, ""),
    "history_flatness": Target("DynamoDB requests per event, 1,000 ÷ 1 past interactions", AT_MOST, 1.1),
    "local_replay_flatness": Target("governor replay events/s, 10,000th ÷ 1,000th", AT_LEAST, 0.8),
}


def verdict(key: str, value: float | None) -> str:
    target = TARGETS[key]
    return "pass" if value is not None and _COMPARE[target.compare](value, target.limit) else "fail"


def goal(key: str, value: float | None, baseline: str, **extra: Any) -> dict[str, Any]:
    """One goal's entry: {value, target, baseline, verdict} plus whatever `extra` adds (e.g. a second scope)."""
    target = TARGETS[key]
    return {
        "value": value,
        "target": f"{target.compare} {target.limit:g}",
        "baseline": baseline,
        "verdict": verdict(key, value),
        "goal": target.goal,
        "measured": value is not None,
        **extra,
    }


def not_measured(key: str, why: str) -> dict[str, Any]:
    return goal(key, None, f"not measured: {why}")


def scope(key: str, value: float, baseline: str) -> dict[str, Any]:
    """A second reading of a goal over another scope (e.g. the decide path with the lifecycle)."""
    return {"value": value, "baseline": baseline, "verdict": verdict(key, value)}


def _shown(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    unit = TARGETS[key].unit
    return f"${value:.2f}" if unit == " USD" else f"{value:.3f}{unit}"


def table(goals: dict[str, dict[str, Any]], width: int = 104) -> list[str]:
    """The goals as printed at the end of `make bench`: each goal's line, then its baseline."""
    lines = [
        "Goals (issue 12), each against a baseline measured in this run",
        f"   {'key':<36}{'value':>10}   {'target':<10}verdict",
    ]
    for key in KEYS:
        found = goals.get(key)
        if found is None:
            continue
        rows = [(key, found)] + [
            (f"  {name.replace('_', ' ')}", other)
            for name, other in found.items()
            if isinstance(other, dict) and "verdict" in other
        ]
        for n, (title, entry) in enumerate(rows):
            target = found["target"] if n == 0 else ""
            lines.append(f"   {title:<36}{_shown(key, entry['value']):>10}   {target:<10}{entry['verdict'].upper()}")
            lines += textwrap.wrap(
                f"baseline: {entry['baseline']}", width, initial_indent=" " * 7, subsequent_indent=" " * 9
            )
    passed = sum(1 for key in KEYS if goals.get(key, {}).get("verdict") == "pass")
    lines.append(f"   {passed} of {len(KEYS)} goals pass")
    return lines
