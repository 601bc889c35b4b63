"""Settings read from the environment that template.yaml gives each function.

A pydantic model, so a missing or malformed variable fails at first use with its name, rather
than deep inside a request.
"""

from __future__ import annotations

import os
from functools import cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.domain.errors import ConfigurationError

# Environment variable -> field. The names are the template's; nothing else spells them.
_VARIABLES = {
    "LEDGER_TABLE": "ledger_table",
    "DECISION_LOG_TABLE": "decision_log_table",
    "EVENT_BUS_NAME": "event_bus_name",
    "DEAD_LETTER_QUEUE_URL": "dead_letter_queue_url",
    "DECISION_RETENTION_DAYS": "decision_retention_days",
    "POLICY_TABLE": "policy_table",
    "STATS_TABLE": "stats_table",
    "POLICY_CACHE_SECONDS": "policy_cache_seconds",
    "SIGNING_SECRET_ARN": "signing_secret_arn",
    "SCHEDULE_GROUP": "schedule_group",
    "SCHEDULER_ROLE_ARN": "scheduler_role_arn",
    "RELEASE_FUNCTION_ARN": "release_function_arn",
    "RELEASE_DLQ_ARN": "release_dlq_arn",
    "SIMULATION_JOBS_TABLE": "simulation_jobs_table",
    "SIMULATION_STATE_MACHINE_ARN": "simulation_state_machine_arn",
    "SIMULATION_MAX_CONCURRENCY": "simulation_max_concurrency",
    "STREAM_DEAD_LETTER_QUEUE_URL": "stream_dead_letter_queue_url",
    "PUBLISHING_FUNCTION_ARN": "publishing_function_arn",
    "COUNTING_FUNCTION_ARN": "counting_function_arn",
}


class Settings(BaseModel):
    # defer_build: the schema is built when settings() first reads the environment (the first
    # invocation), not at the function's cold import.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    ledger_table: str = Field(min_length=1)
    decision_log_table: str = Field(min_length=1)
    event_bus_name: str = Field(min_length=1)
    dead_letter_queue_url: str | None = None
    decision_retention_days: int = Field(default=400, ge=1, le=3650)
    policy_table: str = Field(min_length=1)
    stats_table: str = Field(min_length=1)
    policy_cache_seconds: float = Field(default=30.0, ge=0, le=3600)
    # The secret that signs pagination tokens (admin and policy APIs only).
    signing_secret_arn: str | None = None
    # Where pending follow-ups' releases are scheduled (the log stream function, as it announces them).
    schedule_group: str | None = None
    scheduler_role_arn: str | None = None
    release_function_arn: str | None = None
    release_dlq_arn: str | None = None
    # Simulation jobs (the policy API starts them; the job's own functions run them).
    simulation_jobs_table: str | None = None
    simulation_state_machine_arn: str | None = None
    simulation_max_concurrency: int = Field(default=64, ge=1, le=1000)
    # The replay of parked stream batches (the stream replay function only).
    stream_dead_letter_queue_url: str | None = None
    publishing_function_arn: str | None = None
    counting_function_arn: str | None = None


def from_environment(environ: dict[str, str] | None = None) -> Settings:
    source = os.environ if environ is None else environ
    values = {field: source[name] for name, field in _VARIABLES.items() if source.get(name)}
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        by_field = {field: name for name, field in _VARIABLES.items()}
        problems = [
            f"{by_field.get(str(p['loc'][0]), p['loc'][0])}: "
            + ("is not set" if p["type"] == "missing" else str(p["msg"]))
            for p in error.errors(include_url=False, include_input=False)
        ]
        raise ConfigurationError("environment is invalid: " + "; ".join(problems)) from None


@cache
def settings() -> Settings:
    return from_environment()
