"""The slot-taking write: one conditional request per slot is what keeps caps under concurrency.

Run against both stores (DynamoDB on moto, and the in-memory port used by simulation), so they
cannot drift."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from shared.adapters import ledger
from shared.adapters.clock import FixedClock
from shared.adapters.store import AlreadyDecided, Committed, DynamoStore, LedgerChanged, MemoryStore, Store
from shared.domain import engine
from shared.domain.contacts import ContactLedger
from shared.domain.errors import IdempotencyKeyReused
from shared.domain.events import InteractionClosed
from shared.domain.policy import default_policy
from shared.usecases.decide import DecideUseCase, Governor
from tests.conftest import NOW, detail

POLICY = default_policy()


@pytest.fixture(params=["dynamodb", "memory"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    stack = request.getfixturevalue("aws")
    yield DynamoStore(stack.names["LedgerTable"], stack.names["DecisionLogTable"], timedelta(days=400))


def event(n: int, **overrides: Any) -> InteractionClosed:
    return InteractionClosed.model_validate(detail(event_id=f"e-{n}", interaction_id=f"i-{n}", **overrides))


def approve(store: Store, state: ContactLedger, n: int) -> tuple[Any, ContactLedger]:
    decision = engine.decide(event(n), state, POLICY, NOW)
    after = state.after(decision, POLICY.ledger_retention, NOW)
    return store.commit(decision, state, after, NOW), after


def test_two_deciders_reading_the_same_ledger_cannot_both_take_the_slot(store: Store) -> None:
    # Given two deciders that read the same (empty) ledger of one customer
    seen = store.load(["cust-1"])["cust-1"]
    # When both decide a survey on it and commit
    first, after_first = approve(store, seen, 1)
    second, _ = approve(store, seen, 2)
    # Then the first takes the slot and the second's condition fails, returning the fresh ledger
    assert isinstance(first, Committed)
    assert isinstance(second, LedgerChanged)
    assert second.current == after_first
    # And nothing of the second decision was written
    assert store.get_decision(engine.decide(event(2), seen, POLICY, NOW).decision_id) is None
    assert store.load(["cust-1"])["cust-1"] == after_first


def test_deciding_again_on_the_fresh_ledger_respects_the_cap(store: Store) -> None:
    # Given a survey already committed by another decider after this one read the ledger
    stale = store.load(["cust-1"])["cust-1"]
    approve(store, stale, 1)
    governor = Governor(store, clock=FixedClock(NOW))
    governor._ledgers = {"cust-1": stale}  # this decider still holds the stale read
    # When it decides a second survey for the same customer
    outcome = governor.decide(event(2))
    # Then its failed condition made it decide again, and the survey is refused
    assert outcome.decision.action == "none"
    assert outcome.decision.reasons[0] in ("SURVEY_CAP_REACHED", "CONTACT_COOLDOWN")
    assert store.load(["cust-1"])["cust-1"].version == 1


def test_a_suppression_is_written_once_and_its_repeat_returns_the_first(store: Store) -> None:
    # Given an abandoned interaction decided and committed
    state = store.load(["cust-1"])["cust-1"]
    first = engine.decide(event(1, outcome="abandoned"), state, POLICY, NOW)
    assert isinstance(store.commit(first, state, None, NOW), Committed)
    # When the same event is decided again later (a redelivery) and committed
    again = engine.decide(event(1, outcome="abandoned"), state, POLICY, NOW + timedelta(days=3))
    outcome = store.commit(again, state, None, NOW + timedelta(days=3))
    # Then the store answers with the first decision, unchanged
    assert isinstance(outcome, AlreadyDecided)
    assert outcome.decision == first


def test_an_approval_and_its_log_entry_commit_together_or_not_at_all(store: Store) -> None:
    # Given an event already decided (its log entry is the idempotency marker) as a suppression
    state = store.load(["cust-1"])["cust-1"]
    suppressed = engine.decide(event(1, outcome="abandoned"), state, POLICY, NOW)
    store.commit(suppressed, state, None, NOW)
    # When a redelivery of it decides an approval and tries to take a slot
    approval = engine.decide(event(1), state, POLICY, NOW)
    assert approval.approved
    outcome = store.commit(approval, state, state.after(approval, POLICY.ledger_retention, NOW), NOW)
    # Then the whole commit is refused: no slot is taken without its log entry
    assert isinstance(outcome, AlreadyDecided)
    assert outcome.decision == suppressed
    assert store.load(["cust-1"])["cust-1"] == state


def test_the_ledger_write_itself_carries_the_version_condition(aws: Any) -> None:
    # Given a customer whose ledger is at version 1
    table = aws.names["LedgerTable"]
    client = boto3.client("dynamodb")
    empty = ContactLedger("cust-1")
    decision = engine.decide(event(1), empty, POLICY, NOW)
    v1 = empty.after(decision, POLICY.ledger_retention, NOW)
    client.update_item(**ledger.replace_if_unchanged(table, empty, v1, NOW))
    # When a writer that read version 0 (or, for a new customer, nothing) sends its update
    stale_update = ledger.replace_if_unchanged(table, empty, v1, NOW)
    # Then DynamoDB refuses it on its condition and returns the current item
    with pytest.raises(ClientError) as refused:
        client.update_item(**stale_update)
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert ledger.from_item("cust-1", refused.value.response["Item"]) == v1
    # And a writer that read version 1 but lost to a version-2 writer is refused too
    v2 = replace(v1, version=2)
    client.update_item(**ledger.replace_if_unchanged(table, v1, v2, NOW))
    with pytest.raises(ClientError):
        client.update_item(**ledger.replace_if_unchanged(table, v1, v2, NOW))


def test_the_ledger_stays_bounded_however_long_the_history(store: Store) -> None:
    # Given a customer approved a survey every 31 days for five years
    governor = Governor(store, clock=FixedClock(NOW))
    for n in range(60):
        at = NOW + timedelta(days=31 * n)
        closed = (at - timedelta(hours=1)).isoformat()
        governor.clock = FixedClock(at)
        governor.decide(event(n, closed_at=closed))
    # Then the ledger holds only what a window can still count (a year), not the whole history
    state = store.load(["cust-1"])["cust-1"]
    assert len(state.followups) <= 13
    assert min(f.send_at for f in state.followups) >= NOW + timedelta(days=31 * 59) - POLICY.ledger_retention


def test_a_transaction_conflict_makes_the_governor_read_again_and_decide_on_the_fresh_ledger(aws: Any) -> None:
    from shared.adapters import aws as aws_clients

    # Given a governor that read customer 1's empty ledger
    names = aws.names
    store = DynamoStore(names["LedgerTable"], names["DecisionLogTable"], timedelta(days=400))
    governor = Governor(store, clock=FixedClock(NOW))
    governor.prefetch(["cust-1"])
    # And another decider that takes a survey slot for customer 1 while this governor's approval is in
    # flight, which DynamoDB then cancels as a TransactionConflict (no condition failed, no item returned)
    other = DynamoStore(names["LedgerTable"], names["DecisionLogTable"], timedelta(days=400), boto3.client("dynamodb"))
    conflicts = {"raised": 0}

    def conflict(**_: Any) -> None:
        if not conflicts["raised"]:
            conflicts["raised"] += 1
            approve(other, other.load(["cust-1"])["cust-1"], 1)
            reasons = [{"Code": "TransactionConflict"}, {"Code": "None"}]
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                    "CancellationReasons": reasons,
                },
                "TransactWriteItems",
            )

    aws_clients.client("dynamodb").meta.events.register("provide-client-params.dynamodb.TransactWriteItems", conflict)
    # When the governor decides a survey for customer 1
    outcome = governor.decide(event(2))
    # Then it read the ledger again and decided again on it, in the same call: the cap refuses the survey
    assert conflicts["raised"] == 1
    assert outcome.decision.action == "none"
    assert outcome.decision.reasons[0] in ("SURVEY_CAP_REACHED", "CONTACT_COOLDOWN")
    assert store.load(["cust-1"])["cust-1"].version == 1


# ---- issue 11: the lifecycle, the same on both stores ----------------------------------------


def test_release_and_supersession_of_one_pending_follow_up_exclude_each_other_on_both_stores(store: Store) -> None:
    from shared.adapters.store import NotPending
    from shared.domain.decision import State
    from tests.integration.test_release import RETENTION, decision

    # Given a held survey, read by a release and by a decider alike
    held = decision("evt-held")
    seen = store.load(["cust-1"])["cust-1"]
    after = seen.after(held, RETENTION, NOW)
    assert isinstance(store.commit(held, seen, after, NOW), Committed)
    # When the decider supersedes it first
    newer = decision("evt-newer", supersedes=(held.decision_id,))
    assert isinstance(store.commit(newer, after, after.after(newer, RETENTION, NOW), NOW), Committed)
    # Then the release is told it is no longer pending, and writes nothing
    released = held.with_state(State.RELEASED, None, NOW)
    assert isinstance(store.settle(released, after, after.released(held.decision_id), NOW), NotPending)
    cancelled = store.get_decision(held.decision_id)
    assert cancelled is not None and cancelled.state is State.CANCELLED
    assert [f.decision_id for f in store.load(["cust-1"])["cust-1"].followups] == [newer.decision_id]
    # And the newer one is released once: a repeat of the same release writes nothing
    current = store.load(["cust-1"])["cust-1"]
    assert isinstance(
        store.settle(newer.with_state(State.RELEASED, None, NOW), current, current.released(newer.decision_id), NOW),
        Committed,
    )
    stale = store.settle(newer.with_state(State.RELEASED, None, NOW), current, current.released(newer.decision_id), NOW)
    assert isinstance(stale, NotPending)


def test_an_event_id_reused_for_a_later_close_of_its_interaction_is_refused_alone_on_both_stores(
    store: Store,
) -> None:
    # Given an event decided as a held survey (its follow-up pending in the ledger)
    decide = DecideUseCase(store, clock=FixedClock(NOW))
    closed = NOW - timedelta(minutes=60)
    (first,) = decide.run([event(1, closed_at=closed.isoformat())])
    assert first.decision is not None and first.decision.action == "survey" and first.decision.state == "pending"
    # When its id comes again with other content that would supersede that very follow-up (the same
    # interaction closed again later, unresolved), in a batch with another customer's event
    reused = event(1, outcome="unresolved", closed_at=(closed + timedelta(minutes=30)).isoformat())
    other = event(2, customer_id="cust-other")
    results = decide.run([reused, other])
    # Then the reuse is refused as such (a 409 for POST /decide, a parked record for the queue) ...
    assert isinstance(results[0].refused, IdempotencyKeyReused), results[0]
    # ... the first decision stands, still pending, and the batch's other event is decided
    assert store.get_decision(first.decision.decision_id) == first.decision
    assert results[1].decision is not None and results[1].failed is None


@pytest.mark.parametrize("log_says", ["gone", "released"])
def test_a_ledger_that_missed_what_became_of_a_held_follow_up_is_mended_by_the_next_decision(
    store: Store, log_says: str
) -> None:
    # Given a survey held in the ledger whose log entry says otherwise: gone (expired before the slot)
    # or released (its release's ledger write was lost: a release parked and never replayed)
    decide = DecideUseCase(store, clock=FixedClock(NOW))
    (held,) = decide.run([event(1, closed_at=(NOW - timedelta(minutes=60)).isoformat())])
    assert held.decision is not None and held.decision.state == "pending"
    forget(store, held.decision, log_says)
    # When a newer interaction of the customer is decided (it would supersede a held survey)
    (newer,) = decide.run([event(2, outcome="abandoned", closed_at=(NOW - timedelta(minutes=5)).isoformat())])
    # Then it is decided, not failed for ever: on the ledger as the log tells it
    assert newer.decision is not None and newer.failed is None, newer
    assert held.decision.decision_id not in newer.decision.supersedes
    # And the ledger was mended by that decision's write: the released survey counts as released,
    # the gone one is dropped
    (customer,) = {held.decision.customer_id}
    kept = store.load([customer])[customer].find(held.decision.decision_id)
    if log_says == "gone":
        assert kept is None
    else:
        assert kept is not None and not kept.pending


def forget(store: Store, decision: Any, log_says: str) -> None:
    """Makes the decision log say `log_says` of `decision` without telling the ledger."""
    from shared.domain.decision import State

    if isinstance(store, MemoryStore):
        if log_says == "gone":
            del store.decisions[decision.decision_id]
        else:
            store.decisions[decision.decision_id] = decision.with_state(State.RELEASED, None, NOW)
        return
    assert isinstance(store, DynamoStore)
    client = boto3.client("dynamodb")
    key = ledger_key_of_log(decision.decision_id)
    if log_says == "gone":
        client.delete_item(TableName=store.log_table, Key=key)
    else:
        client.update_item(
            TableName=store.log_table,
            Key=key,
            UpdateExpression="SET #s = :released",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":released": {"S": "released"}},
        )


def ledger_key_of_log(decision_id: str) -> dict[str, Any]:
    from shared.adapters import decision_log

    return decision_log.key(decision_id)
