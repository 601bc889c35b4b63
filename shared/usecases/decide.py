"""The decide use case: events in, committed decisions out, whatever the concurrency. The queue
handler, POST /decide and the Amazon Connect invoke all run this one flow.

- `Governor` decides one event: read the ledger, run the pure engine, commit with one conditional
  request (which also cancels the pending follow-ups the decision supersedes). If another decider
  took a slot in between, the condition fails, the write returns the fresh ledger, and we decide
  again on it; if the write met another in flight (TransactionConflict)
  we back off, read again and decide again. No read-then-blind-write anywhere.
- `DecideUseCase` runs a batch: one ledger read for all (BatchGetItem), then one conditional write
  per event (PutItem for a suppression, TransactWriteItems for an approval or a supersession), and
  nothing else. An event is done once its decision is committed: the decision log's stream
  carries the commit to the log stream function, which publishes and counts it
  (shared.usecases.log_stream), so a decision nobody redelivers (POST /decide, Amazon Connect) is
  announced all the same, and a redelivery, which writes nothing, announces and counts nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from aws_lambda_powertools import Logger

from shared import faults
from shared.adapters import retry
from shared.adapters.aws import AWS_ERRORS, retryable
from shared.adapters.clock import Clock, WallClock
from shared.adapters.store import AlreadyDecided, Committed, LedgerChanged, LedgerStale, Store
from shared.domain import engine
from shared.domain.contacts import ContactLedger
from shared.domain.decision import Decision, fingerprint_of
from shared.domain.errors import GovernorError, IdempotencyKeyReused, InvalidInput, LedgerContention
from shared.domain.events import InteractionClosed
from shared.domain.policy import Policy, default_policy

MAX_ATTEMPTS = 12

logger = Logger(child=True)


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    duplicate: bool  # True when the event had been decided before (redelivery)


@dataclass
class Governor:
    store: Store
    policy: Callable[[], Policy] = default_policy
    clock: Clock = field(default_factory=WallClock)
    # Ledgers read for the current batch; kept fresh by our own commits and by failed conditions.
    _ledgers: dict[str, ContactLedger] = field(default_factory=dict)

    def prefetch(self, customer_ids: Iterable[str]) -> None:
        """Reads every ledger a batch needs in one request instead of one per event."""
        self._ledgers = self.store.load(customer_ids)

    def decide(self, event: InteractionClosed) -> Outcome:
        policy = self.policy()
        fingerprint = fingerprint_of(event)
        current = self._ledgers.get(event.customer_id)
        if current is None:
            current = self.store.load([event.customer_id])[event.customer_id]
        mend = False  # the ledger read missed a release or cancellation: this decision's write mends it
        for attempt in range(MAX_ATTEMPTS):
            now = self.clock.now(event)
            decision = engine.decide(event, current, policy, now)
            # An approval takes a slot; a decision that supersedes pending follow-ups frees theirs
            # (and cancels them) in the same conditional write, approval or not.
            takes_slot = decision.approved or bool(decision.supersedes) or mend
            after = current.after(decision, policy.ledger_retention, now) if takes_slot else None
            result = self.store.commit(decision, current, after, now, fingerprint)
            if isinstance(result, Committed):
                faults.checkpoint(faults.AFTER_COMMIT)
                self._ledgers[event.customer_id] = after or current
                return Outcome(result.decision, duplicate=False)
            if isinstance(result, AlreadyDecided):
                if result.fingerprint is not None and result.fingerprint != fingerprint:
                    raise IdempotencyKeyReused(
                        "this event_id was already used for an event with other content; "
                        "the first event's decision stands: send this event with a new event_id"
                    )
                return Outcome(result.decision, duplicate=True)
            if isinstance(result, LedgerChanged | LedgerStale):
                current, mend = result.current, mend or isinstance(result, LedgerStale)
            else:  # Contended: nothing was written and no fresh ledger came back
                retry.backoff(attempt)
                current = self.store.load([event.customer_id])[event.customer_id]
            self._ledgers[event.customer_id] = current
        raise LedgerContention(f"ledger of customer {event.customer_id} kept changing; retry later")


@dataclass
class Result:
    """What happened to one event of a batch. Exactly one of decision / refused / failed is set."""

    event: InteractionClosed
    decision: Decision | None = None
    duplicate: bool = False
    refused: GovernorError | None = None  # can never succeed as sent: not to be retried
    failed: Exception | None = None  # transient: retry later

    @property
    def done(self) -> bool:
        """Committed (first time or before): nothing left for a retry to do."""
        return self.decision is not None


@dataclass
class DecideUseCase:
    store: Store
    policy: Callable[[], Policy] = default_policy
    clock: Clock = field(default_factory=WallClock)

    def run(self, events: Sequence[InteractionClosed]) -> list[Result]:
        """Decides and commits `events`. Transient failures (throttling, timeouts,
        contention) are reported per event (`failed`); any other exception is a bug and propagates."""
        results = [Result(event) for event in events]
        governor = Governor(self.store, self.policy, self.clock)  # its ledger cache lives for this batch
        try:
            governor.prefetch(event.customer_id for event in events)
        except AWS_ERRORS as error:
            if not retryable(error):
                raise
            logger.warning("ledger prefetch failed", extra={"error": type(error).__name__})
            for result in results:  # every event would fail the same way
                result.failed = error
            return results
        for result in results:
            self._decide(governor, result)
        return results

    def _decide(self, governor: Governor, result: Result) -> None:
        problem = result.event.clock_problem(self.clock.present())  # one time rule (shared.adapters.clock)
        if problem:
            result.refused = InvalidInput(f"closed_at {problem}", [{"field": "closed_at", "message": problem}])
            return
        try:
            outcome = governor.decide(result.event)
        except IdempotencyKeyReused as error:
            result.refused = error
            return
        except AWS_ERRORS as error:
            if not retryable(error):
                raise
            logger.warning("decision failed", extra={"event_id": result.event.event_id, "error": type(error).__name__})
            result.failed = error
            return
        result.decision, result.duplicate = outcome.decision, outcome.duplicate
