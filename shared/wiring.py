"""Builds the production objects once per process from the environment (lazily, at first use)."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING

from shared.adapters.clock import Clock, WallClock
from shared.domain.errors import ConfigurationError

# Each factory imports what it builds, at its first call: a handler's cold start imports the
# adapters and use cases it uses, not every one of the governor (issue 12, cold imports).
if TYPE_CHECKING:
    from shared.adapters.log_queries import DecisionLogQueries
    from shared.adapters.outcome_log import OutcomeLog
    from shared.adapters.policy_store import CachedPolicy, PolicyStore
    from shared.adapters.preferences import Preferences
    from shared.adapters.publisher import Publisher
    from shared.adapters.scheduler import Scheduler
    from shared.adapters.simulation_jobs import SimulationJobs
    from shared.adapters.stats import Stats
    from shared.adapters.store import DynamoStore
    from shared.adapters.tokens import TokenSigner
    from shared.config import Settings
    from shared.usecases.announce import Announcer
    from shared.usecases.decide import DecideUseCase, Governor
    from shared.usecases.log_count import LogCountUseCase
    from shared.usecases.log_stream import LogStreamUseCase
    from shared.usecases.record_outcome import RecordOutcomes
    from shared.usecases.release import ReleaseUseCase
    from shared.usecases.simulation_job import SimulationJobService
    from shared.usecases.stream_replay import Reader, StreamReplayUseCase

_clock: Clock = WallClock()


def settings() -> Settings:
    """The environment's settings (shared.config), imported at the first factory call: its pydantic
    model is then built when the first invocation needs it, not at a cold import."""
    from shared.config import settings as read  # noqa: PLC0415

    return read()


@cache
def store() -> DynamoStore:
    from shared.adapters.store import DynamoStore  # noqa: PLC0415

    config = settings()
    return DynamoStore(config.ledger_table, config.decision_log_table, timedelta(days=config.decision_retention_days))


@cache
def token_signer() -> TokenSigner:
    """Signs the admin and policy APIs' next_tokens; the key is read on the first token only."""
    from shared.adapters.tokens import SecretKey, TokenSigner  # noqa: PLC0415

    return TokenSigner(SecretKey(settings().signing_secret_arn))


@cache
def policy_store() -> PolicyStore:
    from shared.adapters.policy_store import PolicyStore  # noqa: PLC0415

    return PolicyStore(settings().policy_table, signer=token_signer())


@cache
def current_policy() -> CachedPolicy:
    """Shared by every decision of this process: a new version is picked up within the TTL."""
    from shared.adapters.policy_store import CachedPolicy  # noqa: PLC0415

    return CachedPolicy(policy_store(), ttl=settings().policy_cache_seconds)


@cache
def stats() -> Stats:
    from shared.adapters.stats import Stats  # noqa: PLC0415

    config = settings()
    # The log's retention: the day pages the log stream writes expire with the entries they list.
    return Stats(config.stats_table, retention=timedelta(days=config.decision_retention_days))


@cache
def log_queries() -> DecisionLogQueries:
    from shared.adapters.log_queries import DecisionLogQueries  # noqa: PLC0415

    config = settings()
    return DecisionLogQueries(config.decision_log_table, config.stats_table, signer=token_signer())


@cache
def preferences() -> Preferences:
    from shared.adapters.preferences import Preferences  # noqa: PLC0415

    config = settings()
    return Preferences(config.ledger_table, config.decision_log_table, timedelta(days=config.decision_retention_days))


@cache
def publisher() -> Publisher:
    from shared.adapters.publisher import Publisher  # noqa: PLC0415

    return Publisher(settings().event_bus_name)


@cache
def scheduler() -> Scheduler:
    from shared.adapters.scheduler import Scheduler, Target  # noqa: PLC0415

    config = settings()
    if not (
        config.schedule_group and config.scheduler_role_arn and config.release_function_arn and config.release_dlq_arn
    ):
        raise ConfigurationError(
            "scheduling a release needs SCHEDULE_GROUP, SCHEDULER_ROLE_ARN, RELEASE_FUNCTION_ARN and RELEASE_DLQ_ARN"
        )
    target = Target(config.release_function_arn, config.scheduler_role_arn, config.release_dlq_arn)
    return Scheduler(config.schedule_group, target)


class _LazyScheduler:
    """The scheduler, built at its first use: only a pending decision needs one."""

    def ensure(self, decision_id: str, send_at: datetime, now: datetime) -> bool:
        return scheduler().ensure(decision_id, send_at, now)

    def delete(self, decision_id: str) -> None:
        scheduler().delete(decision_id)


def announcer() -> Announcer:
    """Publishing with the lifecycle: schedule pending releases, drop superseded ones' schedules."""
    from shared.usecases.announce import Announcer  # noqa: PLC0415

    return Announcer(publisher(), _LazyScheduler(), clock=_clock)


def governor() -> Governor:
    """A governor per invocation: its ledger cache must not outlive the batch it was read for."""
    from shared.usecases.decide import Governor  # noqa: PLC0415

    return Governor(store(), policy=current_policy(), clock=_clock)


def decide() -> DecideUseCase:
    """The decide use case (queue batches, POST /decide, Amazon Connect), fresh per invocation."""
    from shared.usecases.decide import DecideUseCase  # noqa: PLC0415

    return DecideUseCase(store(), policy=current_policy(), clock=_clock)


def log_stream() -> LogStreamUseCase:
    """The decision log's stream, publishing reader: announce each batch of its records."""
    from shared.usecases.log_stream import LogStreamUseCase  # noqa: PLC0415

    return LogStreamUseCase(announcer())


def log_count() -> LogCountUseCase:
    """The decision log's stream, counting reader: count each batch once and list it on day pages."""
    from shared.usecases.log_count import LogCountUseCase  # noqa: PLC0415

    return LogCountUseCase(stats(), clock=_clock)


def stream_replay() -> StreamReplayUseCase:
    """The replay of parked stream batches: each handed to the reader that gave up on it."""
    from shared.adapters.parked_batches import ParkedBatches  # noqa: PLC0415
    from shared.adapters.stream_records import StreamRecords  # noqa: PLC0415
    from shared.usecases.stream_replay import StreamReplayUseCase  # noqa: PLC0415

    config = settings()
    if not (config.stream_dead_letter_queue_url and config.publishing_function_arn and config.counting_function_arn):
        raise ConfigurationError(
            "STREAM_DEAD_LETTER_QUEUE_URL, PUBLISHING_FUNCTION_ARN and COUNTING_FUNCTION_ARN must be set"
        )
    readers: dict[str, Reader] = {
        _function_name(config.publishing_function_arn): log_stream().run,
        _function_name(config.counting_function_arn): log_count().run,
    }
    return StreamReplayUseCase(ParkedBatches(config.stream_dead_letter_queue_url), StreamRecords(), readers)


def _function_name(arn: str) -> str:
    """arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>] -> <name>."""
    parts = arn.split(":")
    return parts[6] if len(parts) > 6 else arn


def release() -> ReleaseUseCase:
    """The release of one pending follow-up (its schedule fired), fresh per invocation."""
    from shared.usecases.release import ReleaseUseCase  # noqa: PLC0415

    return ReleaseUseCase(store(), policy=current_policy(), clock=_clock)


@cache
def outcome_log() -> OutcomeLog:
    from shared.adapters.outcome_log import OutcomeLog  # noqa: PLC0415

    config = settings()
    return OutcomeLog(config.ledger_table, config.decision_log_table, timedelta(days=config.decision_retention_days))


def record_outcomes() -> RecordOutcomes:
    """The record_outcome use case (POST /outcomes and the FollowUpOutcome queue), fresh per invocation."""
    from shared.usecases.record_outcome import RecordOutcomes  # noqa: PLC0415

    return RecordOutcomes(outcome_log(), lambda customers: store().load(customers), clock=_clock)


@cache
def simulation_jobs() -> SimulationJobs:
    from shared.adapters.simulation_jobs import SimulationJobs  # noqa: PLC0415

    table = settings().simulation_jobs_table
    if not table:
        raise ConfigurationError("simulation jobs need SIMULATION_JOBS_TABLE")
    return SimulationJobs(table)


def simulation_job() -> SimulationJobService:
    """Simulation jobs: started by the policy API (with the state machine), run by their steps."""
    from shared.adapters.step_functions import StateMachine  # noqa: PLC0415
    from shared.usecases.simulation_job import SimulationJobService  # noqa: PLC0415

    arn = settings().simulation_state_machine_arn
    return SimulationJobService(simulation_jobs(), StateMachine(arn) if arn else None, clock=_clock)


def use_clock(clock: Clock) -> None:
    """Local tooling only (`--clock event`): the deployed functions never call this."""
    global _clock
    _clock = clock


def current_clock() -> Clock:
    return _clock


def reset() -> None:
    """Forget everything built from the environment (tests change it between cases)."""
    from shared import config  # noqa: PLC0415

    config.settings.cache_clear()
    store.cache_clear()
    publisher.cache_clear()
    scheduler.cache_clear()
    stats.cache_clear()
    log_queries.cache_clear()
    preferences.cache_clear()
    outcome_log.cache_clear()
    simulation_jobs.cache_clear()
    policy_store.cache_clear()
    token_signer.cache_clear()
    current_policy.cache_clear()
    from shared.adapters import aws  # noqa: PLC0415

    aws.reset_clients()
    use_clock(WallClock())
