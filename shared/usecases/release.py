"""The release use case: a pending follow-up's schedule fired; re-check it, then release or cancel
it, exactly once.

The re-check (engine.recheck) runs against what is true now: the customer's ledger (a newer
interaction may have superseded it, they may have opted out), the current policy, and the
freshness limit. The verdict is committed in one transaction (shared.adapters.store.settle):
the ledger under its version condition, the log entry under `state = pending`. A decider that
supersedes the follow-up at the same moment bumps the same version, so one of the two wins and
the other reads again. A repeated firing (Scheduler retries, a duplicate delivery) finds the entry
no longer pending and changes nothing.

The settlement's stream record announces it (FollowUpApproved or FollowUpCancelled) and counts it
(shared.usecases.log_stream): nothing here publishes, so a firing is done once it has committed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aws_lambda_powertools import Logger

from shared.adapters import retry
from shared.adapters.clock import Clock, WallClock
from shared.adapters.store import Committed, Contended, LedgerChanged, NotPending, Store
from shared.domain import engine
from shared.domain.decision import Decision, State
from shared.domain.errors import LedgerContention
from shared.domain.policy import Policy, default_policy

MAX_ATTEMPTS = 12

logger = Logger(child=True)


@dataclass(frozen=True)
class Released:
    """What a firing did: `decision` as it stands (None: no such decision), and whether this firing
    made the change (False for a repeat, or a follow-up settled before it fired)."""

    decision_id: str
    decision: Decision | None
    changed: bool

    def as_dict(self) -> dict[str, object]:
        found = self.decision
        return {
            "decision_id": self.decision_id,
            "state": str(found.state) if found else None,
            "state_reason": str(found.state_reason) if found and found.state_reason else None,
            "changed": self.changed,
        }


@dataclass
class ReleaseUseCase:
    store: Store
    policy: Callable[[], Policy] = default_policy
    clock: Clock = field(default_factory=WallClock)

    def release(self, decision_id: str) -> Released:
        """Settles the pending follow-up `decision_id` (its stream record then announces it)."""
        outcome = self._settle(decision_id)
        settled = outcome.decision
        if settled is None:
            logger.warning("release of an unknown decision", extra={"decision_id": decision_id})
            return outcome
        logger.info(
            "follow-up settled" if outcome.changed else "follow-up already settled",
            extra={"decision_id": decision_id, "state": str(settled.state), "state_reason": settled.state_reason},
        )
        return outcome

    def _settle(self, decision_id: str) -> Released:
        for attempt in range(MAX_ATTEMPTS):
            decision = self.store.get_decision(decision_id)
            if decision is None or decision.state is not State.PENDING:
                return Released(decision_id, decision, changed=False)
            now = self.clock.now()
            ledger = self.store.load([decision.customer_id])[decision.customer_id]
            # Not in the ledger any more: a newer interaction's decision took its slot over.
            followup = ledger.find(decision_id)
            state, reason, _checks = engine.recheck(followup, decision, ledger, self.policy(), now)
            after = ledger.released(decision_id) if state is State.RELEASED else ledger.cancelled(decision_id)
            settled = decision.with_state(state, reason, now)
            result = self.store.settle(settled, ledger, after, now)
            if isinstance(result, Committed):
                return Released(decision_id, settled, changed=True)
            if isinstance(result, Contended):
                retry.backoff(attempt)
            # NotPending or LedgerChanged: someone settled or superseded it meanwhile; read again.
            assert isinstance(result, NotPending | LedgerChanged | Contended)
        raise LedgerContention(f"ledger of the customer of {decision_id} kept changing; retry later")
