"""Builds the production objects once per process from the environment (lazily, at first use)."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

from shared import config
from shared.adapters import aws
from shared.adapters.clock import Clock, WallClock
from shared.adapters.log_queries import DecisionLogQueries
from shared.adapters.outbox import Outbox
from shared.adapters.outcome_log import OutcomeLog
from shared.adapters.policy_store import CachedPolicy, PolicyStore
from shared.adapters.preferences import Preferences
from shared.adapters.publisher import Publisher
from shared.adapters.scheduler import Scheduler, Target
from shared.adapters.stats import Stats
from shared.adapters.store import DynamoStore
from shared.adapters.tokens import SecretKey, TokenSigner
from shared.config import settings
from shared.domain.errors import ConfigurationError
from shared.usecases.announce import Announcer
from shared.usecases.decide import DecideUseCase, Governor
from shared.usecases.outbox import OutboxSweeper
from shared.usecases.record_outcome import RecordOutcomes
from shared.usecases.release import ReleaseUseCase

_clock: Clock = WallClock()


@cache
def store() -> DynamoStore:
    config = settings()
    return DynamoStore(
        config.ledger_table,
        config.decision_log_table,
        timedelta(days=config.decision_retention_days),
        stats_table=config.stats_table,
    )


@cache
def token_signer() -> TokenSigner:
    """Signs the admin and policy APIs' next_tokens; the key is read on the first token only."""
    return TokenSigner(SecretKey(settings().signing_secret_arn))


@cache
def policy_store() -> PolicyStore:
    return PolicyStore(settings().policy_table, signer=token_signer())


@cache
def current_policy() -> CachedPolicy:
    """Shared by every decision of this process: a new version is picked up within the TTL."""
    return CachedPolicy(policy_store(), ttl=settings().policy_cache_seconds)


@cache
def stats() -> Stats:
    return Stats(settings().stats_table, settings().decision_log_table)


@cache
def log_queries() -> DecisionLogQueries:
    return DecisionLogQueries(settings().decision_log_table, signer=token_signer())


@cache
def preferences() -> Preferences:
    config = settings()
    return Preferences(config.ledger_table, config.decision_log_table, timedelta(days=config.decision_retention_days))


@cache
def publisher() -> Publisher:
    return Publisher(settings().event_bus_name)


@cache
def scheduler() -> Scheduler:
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
    """Publishing with the lifecycle: schedule pending releases, announce superseded cancellations."""
    return Announcer(publisher(), _LazyScheduler(), store().get_decision, clock=_clock)


def governor() -> Governor:
    """A governor per invocation: its ledger cache must not outlive the batch it was read for."""
    return Governor(store(), policy=current_policy(), clock=_clock)


def decide() -> DecideUseCase:
    """The decide use case (queue batches, POST /decide, Amazon Connect), fresh per invocation."""
    return DecideUseCase(store(), announcer(), stats(), policy=current_policy(), clock=_clock)


@cache
def outbox_reader() -> Outbox:
    return Outbox(settings().decision_log_table)


def outbox() -> OutboxSweeper:
    return OutboxSweeper(outbox_reader(), announcer(), stats(), clock=_clock)


def release() -> ReleaseUseCase:
    """The release of one pending follow-up (its schedule fired), fresh per invocation."""
    return ReleaseUseCase(store(), publisher(), policy=current_policy(), clock=_clock)


@cache
def outcome_log() -> OutcomeLog:
    config = settings()
    return OutcomeLog(config.ledger_table, config.decision_log_table, timedelta(days=config.decision_retention_days))


def record_outcomes() -> RecordOutcomes:
    """The record_outcome use case (POST /outcomes and the FollowUpOutcome queue), fresh per invocation."""
    return RecordOutcomes(outcome_log(), lambda customers: store().load(customers), clock=_clock)


def use_clock(clock: Clock) -> None:
    """Local tooling only (`--clock event`): the deployed functions never call this."""
    global _clock
    _clock = clock


def current_clock() -> Clock:
    return _clock


def reset() -> None:
    """Forget everything built from the environment (tests change it between cases)."""
    config.settings.cache_clear()
    store.cache_clear()
    publisher.cache_clear()
    scheduler.cache_clear()
    stats.cache_clear()
    log_queries.cache_clear()
    preferences.cache_clear()
    outbox_reader.cache_clear()
    outcome_log.cache_clear()
    policy_store.cache_clear()
    token_signer.cache_clear()
    current_policy.cache_clear()
    aws.reset_clients()
    use_clock(WallClock())
