"""Two or three deciders interleaved step by step (read the ledger, decide, commit) over the store
API: whatever the interleaving, a commit based on a stale ledger is refused, the decider decides
again on the fresh one, and no cap is ever exceeded. Run against the in-memory store and against
DynamoDB on moto (the same contract)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import boto3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.adapters.store import AlreadyDecided, Committed, DynamoStore, LedgerChanged, MemoryStore, Store
from shared.domain import engine
from shared.domain.contacts import ContactLedger
from shared.domain.events import InteractionClosed
from shared.domain.policy import default_policy
from tests.conftest import NOW, detail

POLICY = default_policy()
CUSTOMER = "cust-hot"


@dataclass
class Decider:
    events: list[InteractionClosed]
    ledger: ContactLedger | None = None
    pending: Any = None  # (decision, before, after) between decide and commit
    done: list[Any] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return not self.events and self.pending is None


def step(decider: Decider, store: Store, refused: list[int], stale: list[int]) -> None:
    """One step of one decider: read if it has no ledger, else decide if it has nothing pending, else commit."""
    if decider.ledger is None:
        decider.ledger = store.load([CUSTOMER])[CUSTOMER]
        return
    if decider.pending is None:
        event = decider.events[0]
        decision = engine.decide(event, decider.ledger, POLICY, NOW)
        after = decider.ledger.after(decision, POLICY.ledger_retention, NOW) if decision.approved else None
        decider.pending = (decision, decider.ledger, after)
        return
    decision, before, after = decider.pending
    current = store.load([CUSTOMER])[CUSTOMER]
    if after is not None and current.version != before.version:
        stale.append(1)  # this commit would be based on a stale ledger
    outcome = store.commit(decision, before, after, NOW)
    decider.pending = None
    if isinstance(outcome, LedgerChanged):
        refused.append(1)
        decider.ledger = outcome.current  # decide again on what the failed condition returned
        return
    assert isinstance(outcome, Committed | AlreadyDecided)
    decider.done.append(outcome.decision)
    decider.events.pop(0)
    decider.ledger = None


def run(store: Store, plan: list[list[str]], order: list[int]) -> tuple[list[Decider], int, int]:
    deciders = [
        Decider(
            [
                InteractionClosed.model_validate(
                    detail(event_id=f"e-{d}-{n}", interaction_id=f"i-{d}-{n}", customer_id=CUSTOMER, outcome=outcome)
                )
                for n, outcome in enumerate(outcomes)
            ]
        )
        for d, outcomes in enumerate(plan)
    ]
    refused: list[int] = []
    stale: list[int] = []
    turns = iter(order)
    while not all(d.finished for d in deciders):
        choice = next(turns, None)
        live = [d for d in deciders if not d.finished]
        step(live[choice % len(live)] if choice is not None else live[0], store, refused, stale)
    return deciders, len(refused), len(stale)


def audit(store: Store, deciders: list[Decider]) -> None:
    state = store.load([CUSTOMER])[CUSTOMER]
    committed = [(str(f.kind), f.send_at) for f in state.followups]
    surveys = [t for k, t in committed if k == "survey"]
    callbacks = [t for k, t in committed if k == "callback"]
    assert len(surveys) <= 1 and len(callbacks) <= 1  # all at NOW: 1 per 30 days, 1 per 7 days
    decided = [d for decider in deciders for d in decider.done]
    assert len({d.decision_id for d in decided}) == len(decided)
    assert sorted(f.decision_id for f in state.followups) == sorted(d.decision_id for d in decided if d.approved)


plans = st.lists(
    st.lists(st.sampled_from(["resolved", "unresolved", "escalated", "abandoned"]), min_size=1, max_size=4),
    min_size=2,
    max_size=3,
)
orders = st.lists(st.integers(min_value=0, max_value=2), max_size=60)


@settings(max_examples=150, deadline=None)
@given(plan=plans, order=orders)
def test_every_interleaving_keeps_the_caps_in_the_memory_store(plan: list[list[str]], order: list[int]) -> None:
    store = MemoryStore()
    deciders, refused, stale = run(store, plan, order)
    audit(store, deciders)
    assert refused == stale  # exactly the commits based on a stale ledger were refused


def dynamo_store(stack: Any) -> DynamoStore:
    """DynamoDB (moto) with the template's tables; call inside the moto that `stack` was provisioned on."""
    return DynamoStore(
        stack.names["LedgerTable"],
        stack.names["DecisionLogTable"],
        timedelta(days=400),
        client=boto3.client("dynamodb"),
    )


# `provisioned` is session-scoped: each example gets its own fresh moto from it (no state shared).
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans, order=orders)
def test_every_interleaving_keeps_the_caps_in_dynamodb(
    provisioned: Any, plan: list[list[str]], order: list[int]
) -> None:
    with provisioned.fresh() as stack:
        store = dynamo_store(stack)
        deciders, refused, stale = run(store, plan, order)
        audit(store, deciders)
        assert refused == stale
