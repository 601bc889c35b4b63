"""The decide use case: one event in, one committed decision out, whatever the concurrency.

Read the ledger, run the pure engine, commit with one conditional request. If another decider
took a slot in between, the condition fails, the write returns the fresh ledger, and we decide
again on it: no read-then-blind-write anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from shared import faults
from shared.adapters.clock import Clock, WallClock
from shared.adapters.store import AlreadyDecided, Committed, LedgerChanged, Store
from shared.domain import engine
from shared.domain.contacts import ContactLedger
from shared.domain.decision import Decision
from shared.domain.errors import LedgerContention
from shared.domain.events import InteractionClosed
from shared.domain.policy import Policy, default_policy

MAX_ATTEMPTS = 12


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
        current = self._ledgers.get(event.customer_id)
        if current is None:
            current = self.store.load([event.customer_id])[event.customer_id]
        for _ in range(MAX_ATTEMPTS):
            now = self.clock.now(event)
            decision = engine.decide(event, current, policy, now)
            after = current.after(decision, policy.ledger_retention, now) if decision.approved else None
            result = self.store.commit(decision, current, after, now)
            if isinstance(result, Committed):
                faults.checkpoint(faults.AFTER_COMMIT)
                self._ledgers[event.customer_id] = after or current
                return Outcome(result.decision, duplicate=False)
            if isinstance(result, AlreadyDecided):
                return Outcome(result.decision, duplicate=True)
            assert isinstance(result, LedgerChanged)
            current = result.current
            self._ledgers[event.customer_id] = current
        raise LedgerContention(f"ledger of customer {event.customer_id} kept changing; retry later")
