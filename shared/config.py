"""Settings read from the environment that template.yaml gives each function."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from shared.errors import ConfigurationError


@dataclass(frozen=True)
class Settings:
    ledger_table: str
    decision_log_table: str
    event_bus_name: str
    dead_letter_queue_url: str | None
    decision_retention_days: int
    policy_table: str
    stats_table: str
    policy_cache_seconds: float


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ConfigurationError(f"environment variable {name} is not set")
    return value


@cache
def settings() -> Settings:
    return Settings(
        ledger_table=_required("LEDGER_TABLE"),
        decision_log_table=_required("DECISION_LOG_TABLE"),
        event_bus_name=_required("EVENT_BUS_NAME"),
        dead_letter_queue_url=os.environ.get("DEAD_LETTER_QUEUE_URL") or None,
        decision_retention_days=int(os.environ.get("DECISION_RETENTION_DAYS", "400")),
        policy_table=_required("POLICY_TABLE"),
        stats_table=_required("STATS_TABLE"),
        policy_cache_seconds=float(os.environ.get("POLICY_CACHE_SECONDS", "30")),
    )
