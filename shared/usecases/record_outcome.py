"""The record_outcome use case: what became of a released follow-up, kept where the next decision reads it.

POST /outcomes and the FollowUpOutcome queue both run `RecordOutcomes`. Each outcome is recorded
once, whatever the retries: its record (keyed by outcome_id), the check that its decision was
released and the ledger update are one transaction (shared.adapters.outcome_log). An outcome that can
never be recorded as sent is refused with a code saying what to change:

- DECISION_NOT_FOUND: no decision has that decision_id;
- DECISION_NOT_RELEASED: the decision was suppressed, is still pending or was cancelled: nothing
  reached the customer, so nothing can have come back;
- OUTCOME_TYPE_MISMATCH: survey_responded for a callback, callback_completed for a survey;
- OUTCOME_BEFORE_RELEASE: occurred_at is before the follow-up was released;
- IDEMPOTENCY_KEY_REUSED: the outcome_id was recorded with other content (a repeat with the same
  content is accepted and changes nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from aws_lambda_powertools import Logger

from shared.adapters import retry
from shared.adapters.aws import AWS_ERRORS, retryable
from shared.adapters.clock import Clock, WallClock
from shared.adapters.outcome_log import (
    AlreadyRecorded,
    LedgerChanged,
    NotReleased,
    OutcomeLog,
    Recorded,
    Seen,
    key_of,
)
from shared.domain.contacts import ContactLedger
from shared.domain.decision import Decision, State
from shared.domain.errors import GovernorError, LedgerContention
from shared.domain.events import MAX_CLOCK_SKEW
from shared.domain.outcomes import FollowUpOutcome, outcome_fingerprint

MAX_ATTEMPTS = 12

logger = Logger(child=True)


class OutcomeRefused(GovernorError):
    """An outcome that can never be recorded as sent: not to be retried."""

    status = 409

    def __init__(self, code: str, message: str, field_name: str) -> None:
        super().__init__(message)
        self.code = code
        self.fields = [{"field": field_name, "message": message}]


@dataclass
class OutcomeResult:
    """What happened to one outcome. Exactly one of recorded / refused / failed holds."""

    outcome: FollowUpOutcome
    recorded: bool = False
    duplicate: bool = False  # recorded before, with the same content: nothing changed
    refused: OutcomeRefused | None = None
    failed: Exception | None = None  # transient: retry later


LoadLedgers = Callable[[list[str]], dict[str, ContactLedger]]


@dataclass
class RecordOutcomes:
    log: OutcomeLog
    load_ledgers: LoadLedgers
    clock: Clock = field(default_factory=WallClock)

    def run(self, outcomes: Sequence[FollowUpOutcome]) -> list[OutcomeResult]:
        """Records `outcomes` in order. Transient failures are reported per outcome (`failed`); any
        other exception is a bug and propagates."""
        results = [OutcomeResult(o) for o in outcomes]
        if not results:
            return results
        # "Now" for each outcome; under the local event clock this first runs the follow-up
        # schedules due by then, so an outcome sees the releases that came before it.
        moments = [self.clock.happened(o.occurred_at) for o in outcomes]
        try:
            seen = self.log.read(list(outcomes))
            customers = sorted({d.customer_id for d in seen.decisions.values()})
            ledgers = self.load_ledgers(customers) if customers else {}
        except AWS_ERRORS as error:
            if not retryable(error):
                raise
            logger.warning("outcome reads failed", extra={"error": type(error).__name__})
            for result in results:
                result.failed = error
            return results
        for result, now in zip(results, moments, strict=True):
            try:
                self._record(result, seen, ledgers, now)
            except OutcomeRefused as refusal:
                result.refused = refusal
            except AWS_ERRORS as error:
                if not retryable(error):
                    raise
                logger.warning("outcome failed", extra={"outcome_id": result.outcome.outcome_id})
                result.failed = error
        return results

    def _record(self, result: OutcomeResult, seen: Seen, ledgers: dict[str, ContactLedger], now: datetime) -> None:
        outcome = result.outcome
        fingerprint = outcome_fingerprint(outcome)
        known = seen.recorded.get(key_of(outcome.outcome_id))
        if known is not None:
            result.duplicate = _same(known, fingerprint)
            return
        decision = _releasable(outcome, seen.decisions.get(outcome.decision_id), self.clock)
        current = ledgers.get(decision.customer_id) or ContactLedger(decision.customer_id)
        for attempt in range(MAX_ATTEMPTS):
            after = current.with_outcome(outcome) if current.find(decision.decision_id) else None
            answer = self.log.commit(outcome, decision, fingerprint=fingerprint, before=current, after=after, now=now)
            if isinstance(answer, Recorded):
                if after is not None:
                    ledgers[decision.customer_id] = after  # the next outcome of this batch builds on it
                seen.recorded[key_of(outcome.outcome_id)] = fingerprint  # a repeat in this batch
                result.recorded = True
                return
            if isinstance(answer, AlreadyRecorded):  # recorded since we read: a concurrent repeat
                result.duplicate = _same(answer.fingerprint or "", fingerprint)
                return
            if isinstance(answer, NotReleased):
                raise _not_released(decision)
            if isinstance(answer, LedgerChanged):
                current = answer.current
            else:  # Contended: nothing was written, no fresh ledger came back
                retry.backoff(attempt)
                current = self.load_ledgers([decision.customer_id])[decision.customer_id]
            ledgers[decision.customer_id] = current
        raise LedgerContention(f"ledger of customer {decision.customer_id} kept changing; retry later")


def _same(known: str, fingerprint: str) -> bool:
    """True for a repeat of the same outcome; refuses another outcome reusing the outcome_id."""
    if known != fingerprint:
        raise OutcomeRefused(
            "IDEMPOTENCY_KEY_REUSED",
            "this outcome_id was already recorded with other content; the first outcome stands: "
            "send this one with a new outcome_id",
            "outcome_id",
        )
    return True


def _releasable(outcome: FollowUpOutcome, decision: Decision | None, clock: Clock) -> Decision:
    """The decision the outcome is about, if an outcome of this type can have come back from it."""
    problem = outcome.clock_problem(clock.present())  # one time rule (shared.adapters.clock)
    if problem:
        raise OutcomeRefused("INVALID_OUTCOME", f"occurred_at {problem}", "occurred_at")
    if decision is None:
        raise OutcomeRefused(
            "DECISION_NOT_FOUND", "no decision has this decision_id; send the id of a released decision", "decision_id"
        )
    if decision.state is not State.RELEASED:
        raise _not_released(decision)
    if not outcome.type.fits(decision.action):
        raise OutcomeRefused(
            "OUTCOME_TYPE_MISMATCH",
            f"the decision was a {decision.action}; {outcome.type} does not fit it",
            "type",
        )
    if outcome.occurred_at < decision.state_changed_at - MAX_CLOCK_SKEW:
        raise OutcomeRefused(
            "OUTCOME_BEFORE_RELEASE",
            "is before the follow-up was released; send the time the outcome actually occurred",
            "occurred_at",
        )
    return decision


def _not_released(decision: Decision) -> OutcomeRefused:
    return OutcomeRefused(
        "DECISION_NOT_RELEASED",
        f"the decision is {decision.state}, never released to the sending systems, so it can have no outcome",
        "decision_id",
    )
