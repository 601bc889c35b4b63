"""Issue 11: a pending follow-up is held until its send time, then re-checked and released or
cancelled exactly once, whatever the retries, repeated firings and racing deciders.

moto is the only AWS (resources from template.yaml); the release function runs through its handler
with the Input its schedule carries, as EventBridge Scheduler invokes it; its settlement is
announced and counted by the log stream function, run on the decision log's stream as Lambda would
(tests.conftest.drain_stream). Decisions are built here
with the shapes the engine makes, so each race is set up exactly; the decide path itself is covered
in tests/integration/test_scheduling.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from infra.lambda_runtime import LambdaContext
from shared import wiring
from shared.adapters.clock import FixedClock
from shared.adapters.store import Committed, LedgerChanged, NotPending
from shared.domain.contacts import ContactLedger, OptOut
from shared.domain.decision import (
    Action,
    CancelReason,
    Decision,
    DecisionInput,
    Reason,
    State,
    decision_id_for,
)
from shared.domain.events import Channel, Outcome
from shared.domain.policy import Policy
from tests.conftest import NOW, drain_stream, ledger_of

CLOSED = NOW - timedelta(minutes=30)
SEND_AT = NOW + timedelta(hours=2)  # the survey delay: held until then
RETENTION = timedelta(days=400)


_stack: list[Any] = []  # the test's provisioned stack, for helpers that drain its log stream


@pytest.fixture(autouse=True)
def environment(aws: Any) -> Iterator[None]:
    os.environ.update(aws.environment("ReleaseFunction"))
    wiring.reset()
    wiring.use_clock(FixedClock(NOW))
    _stack[:] = [aws]
    yield
    _stack.clear()


def decision(
    event_id: str,
    *,
    action: Action = Action.SURVEY,
    closed_at: datetime = CLOSED,
    send_at: datetime | None = SEND_AT,
    decided_at: datetime = NOW,
    supersedes: tuple[str, ...] = (),
    customer_id: str = "cust-1",
) -> Decision:
    """A decision as the engine makes it: pending when approved for later, suppressed otherwise."""
    approved = action is not Action.NONE
    return Decision(
        decision_id=decision_id_for(customer_id, event_id),
        event_id=event_id,
        interaction_id=f"int-{event_id}",
        customer_id=customer_id,
        action=action,
        reasons=(Reason.SURVEY_DELAYED if action is Action.SURVEY else Reason.CALLBACK_UNRESOLVED,)
        if approved
        else (Reason.SURVEY_CAP_REACHED,),
        explanation=(),
        policy_version=0,
        send_at=send_at if approved else None,
        decided_at=decided_at,
        input=DecisionInput(channel=Channel.PHONE, closed_at=closed_at, outcome=Outcome.RESOLVED),
        state=State.PENDING if approved else State.SUPPRESSED,
        state_changed_at=decided_at,
        supersedes=supersedes,
    )


def commit(made: Decision, now: datetime = NOW) -> ContactLedger:
    """Commits `made` as the decide path does (its slot, and the follow-ups it supersedes); the new ledger."""
    store = wiring.store()
    before = store.load([made.customer_id])[made.customer_id]
    after = before.after(made, RETENTION, now)
    assert isinstance(store.commit(made, before, after, now), Committed)
    return after


def fire(decision_id: str, at: datetime) -> dict[str, Any]:
    """One invocation of the release function by the decision's schedule, at `at`."""
    from functions.release.app import handler

    wiring.use_clock(FixedClock(at))
    return handler({"decision_id": decision_id}, LambdaContext("release"))  # type: ignore[no-any-return]


def logged(decision_id: str) -> Decision:
    found = wiring.store().get_decision(decision_id)
    assert found is not None
    return found


def lifecycle_counts(day: datetime) -> dict[str, Any]:
    """The day's release and cancellation counters, once the log's stream has been handled."""
    drain_stream(_stack[0])
    (summary,) = wiring.stats().days(day.date(), day.date())
    return {"released": summary["released"], "cancelled": summary["cancelled_by_reason"]}


def announced(read: Any) -> list[tuple[str, str, str]]:
    return [(e["detail-type"], e["detail"]["decision_id"], e["detail"]["state"]) for e in read()]


# ---- released exactly once -------------------------------------------------------------------


def test_a_pending_survey_is_released_once_however_often_its_schedule_fires(aws: Any, outbound: Any) -> None:
    # Given a survey held until its send time
    held = decision("evt-held")
    commit(held)
    # When its schedule fires, and Scheduler fires it twice more (a retry, a duplicate delivery)
    answers = [fire(held.decision_id, SEND_AT + timedelta(seconds=s)) for s in (0, 5, 60)]
    # Then the first firing released it and the others changed nothing
    assert [a["changed"] for a in answers] == [True, False, False]
    released = logged(held.decision_id)
    assert (released.state, released.state_reason, released.state_changed_at) == (State.RELEASED, None, SEND_AT)
    # And its ledger slot is released once: one version step, no second follow-up
    ledger = ledger_of(aws, "cust-1")
    assert ledger.version == 2
    assert [(f.decision_id, f.state) for f in ledger.followups] == [(held.decision_id, "released")]
    # And it is counted once and announced once: the repeated firings wrote nothing, so the log's
    # stream carries one release (the held survey's own FollowUpScheduled came before it)
    assert lifecycle_counts(SEND_AT) == {"released": 1, "cancelled": {}}
    assert announced(outbound) == [
        ("FollowUpScheduled", held.decision_id, "pending"),
        ("FollowUpApproved", held.decision_id, "released"),
    ]


def test_a_release_for_an_unknown_decision_or_a_malformed_input_changes_nothing(aws: Any, outbound: Any) -> None:
    from functions.release.app import handler

    # When a schedule names a decision that does not exist, or carries no decision id at all
    unknown = fire(decision_id_for("cust-1", "evt-never"), SEND_AT)
    malformed = handler({"decision": "x"}, LambdaContext("release"))
    # Then nothing is written or announced
    assert unknown["state"] is None and unknown["changed"] is False
    assert malformed["decision_id"] is None
    assert ledger_of(aws, "cust-1").version == 0
    assert outbound() == []


# ---- each cancellation reason, through the release function ---------------------------------


def opt_out(aws: Any, kind: str) -> None:
    from shared.adapters import ledger

    store = wiring.store()
    before = store.load(["cust-1"])["cust-1"]
    wanted = (OptOut(kind, "support call", NOW + timedelta(minutes=5)),)
    store.client.update_item(**ledger.set_opt_outs(aws.names["LedgerTable"], before, wanted, NOW))


def forbid_surveys(_aws: Any) -> None:
    policy = Policy.model_validate({"enabled": {"survey": False}})
    wiring.policy_store().save(policy, based_on=0, author="ops", comment="no surveys")


@pytest.mark.parametrize(
    ("reason", "meanwhile", "fired_at"),
    [
        (CancelReason.OPTED_OUT, lambda aws: opt_out(aws, "survey"), SEND_AT),
        (CancelReason.OPTED_OUT, lambda aws: opt_out(aws, "all"), SEND_AT),
        # Scheduler ran late (an outage, a backlog): the survey is now older than the freshness limit
        (CancelReason.EXPIRED, lambda aws: None, CLOSED + timedelta(hours=48, minutes=1)),
        (CancelReason.POLICY_FORBIDS, forbid_surveys, SEND_AT),
    ],
)
def test_a_pending_survey_is_cancelled_at_release_when_it_should_no_longer_go_out(
    aws: Any, outbound: Any, reason: CancelReason, meanwhile: Any, fired_at: datetime
) -> None:
    # Given a survey held until its send time
    held = decision("evt-held")
    commit(held)
    # And something that happened since (the customer opted out, time passed, the policy changed)
    os.environ["POLICY_CACHE_SECONDS"] = "0"
    wiring.reset()
    meanwhile(aws)
    # When its schedule fires
    answer = fire(held.decision_id, fired_at)
    # Then it is cancelled with that reason, its slot freed, counted and announced (after the held
    # survey's own FollowUpScheduled)
    assert answer == {
        "decision_id": held.decision_id,
        "state": "cancelled",
        "state_reason": str(reason),
        "changed": True,
    }
    assert logged(held.decision_id).state_reason is reason
    assert ledger_of(aws, "cust-1").find(held.decision_id) is None
    assert lifecycle_counts(fired_at) == {"released": 0, "cancelled": {str(reason): 1}}
    assert announced(outbound) == [
        ("FollowUpScheduled", held.decision_id, "pending"),
        ("FollowUpCancelled", held.decision_id, "cancelled"),
    ]


def test_a_pending_follow_up_superseded_at_decision_time_is_cancelled_in_the_same_write(
    aws: Any, outbound: Any
) -> None:
    # Given a survey held until its send time
    held = decision("evt-held")
    commit(held)
    # When the customer's newer interaction is decided, superseding it
    newer = decision("evt-newer", closed_at=NOW + timedelta(minutes=40), supersedes=(held.decision_id,))
    ledger = commit(newer, NOW + timedelta(hours=1))
    # Then the held survey is cancelled by that very commit, its slot given to the newer one
    cancelled = logged(held.decision_id)
    assert (cancelled.state, cancelled.state_reason) == (State.CANCELLED, CancelReason.SUPERSEDED_BY_NEWER_INTERACTION)
    assert [f.decision_id for f in ledger_of(aws, "cust-1").followups] == [newer.decision_id]
    assert ledger_of(aws, "cust-1") == ledger
    assert lifecycle_counts(NOW + timedelta(hours=1))["cancelled"] == {"SUPERSEDED_BY_NEWER_INTERACTION": 1}
    # And when its schedule fires anyway (its deletion is best effort), nothing changes
    assert fire(held.decision_id, SEND_AT)["changed"] is False
    assert logged(held.decision_id).state is State.CANCELLED
    assert lifecycle_counts(NOW + timedelta(hours=1))["cancelled"] == {"SUPERSEDED_BY_NEWER_INTERACTION": 1}


def test_a_suppression_that_supersedes_frees_the_slot_and_cancels_in_one_transaction(aws: Any) -> None:
    # Given a survey held until its send time
    held = decision("evt-held")
    commit(held)
    # When the newer interaction gets nothing (say a cap), yet still supersedes the held survey
    newer = decision("evt-newer", action=Action.NONE, supersedes=(held.decision_id,))
    commit(newer, NOW + timedelta(hours=1))
    # Then the held survey is cancelled and its slot freed, and the suppression is logged
    assert logged(held.decision_id).state is State.CANCELLED
    assert ledger_of(aws, "cust-1").followups == ()
    assert logged(newer.decision_id).state is State.SUPPRESSED


# ---- races: release against supersession, both orders ----------------------------------------


class Interleaved:
    """The real DynamoDB store (moto), with `between` run after the release has read everything and
    before it writes: the moment another decider commits in a real race."""

    def __init__(self, between: Any) -> None:
        self.inner = wiring.store()
        self.between = between

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def settle(self, *args: Any) -> Any:
        between, self.between = self.between, None
        if between is not None:
            between()
        return self.inner.settle(*args)


def test_supersession_committed_while_the_release_decides_wins_and_the_release_changes_nothing(
    aws: Any, outbound: Any
) -> None:
    from shared.usecases.release import ReleaseUseCase

    # Given a held survey, and its release that has read the log and the ledger
    held = decision("evt-held")
    commit(held)
    newer = decision("evt-newer", closed_at=SEND_AT - timedelta(minutes=5), supersedes=(held.decision_id,))
    # When a decider commits the newer interaction, superseding it, before the release writes
    store = Interleaved(lambda: commit(newer, SEND_AT - timedelta(seconds=1)))
    release = ReleaseUseCase(store, clock=FixedClock(SEND_AT))  # type: ignore[arg-type]
    outcome = release.release(held.decision_id)
    # Then the release's write failed its conditions, it read again and found the survey cancelled
    assert outcome.changed is False
    assert outcome.decision is not None
    assert outcome.decision.state_reason is CancelReason.SUPERSEDED_BY_NEWER_INTERACTION
    # And the survey never went out: cancelled once, the slot the newer decision's alone
    assert [f.decision_id for f in ledger_of(aws, "cust-1").followups] == [newer.decision_id]
    assert lifecycle_counts(SEND_AT) == {"released": 0, "cancelled": {"SUPERSEDED_BY_NEWER_INTERACTION": 1}}
    assert ("FollowUpApproved", held.decision_id, "released") not in announced(outbound)


def test_a_release_committed_while_a_decider_decides_wins_and_the_decider_decides_again(aws: Any) -> None:
    # Given a held survey, and a decider that read the ledger while it was still pending
    held = decision("evt-held")
    stale = commit(held)
    newer = decision("evt-newer", closed_at=SEND_AT - timedelta(minutes=5), supersedes=(held.decision_id,))
    # When the release commits first
    assert fire(held.decision_id, SEND_AT)["changed"] is True
    # Then the decider's superseding commit fails its ledger condition and hands back the fresh ledger
    store = wiring.store()
    result = store.commit(newer, stale, stale.after(newer, RETENTION, SEND_AT), SEND_AT)
    assert isinstance(result, LedgerChanged)
    assert result.current.find(held.decision_id) is not None
    assert not result.current.find(held.decision_id).pending  # type: ignore[union-attr]
    # And the released survey stays released: nothing cancelled, nothing written by the loser
    assert logged(held.decision_id).state is State.RELEASED
    assert wiring.store().get_decision(newer.decision_id) is None
    assert lifecycle_counts(SEND_AT) == {"released": 1, "cancelled": {}}


def test_a_release_that_lost_to_a_supersession_is_told_so_by_the_store(aws: Any) -> None:
    # Given a held survey read by a release
    held = decision("evt-held")
    stale = commit(held)
    # When a newer decision supersedes it first
    commit(decision("evt-newer", supersedes=(held.decision_id,)), NOW + timedelta(minutes=1))
    # Then the release's transaction writes nothing
    settled = held.with_state(State.RELEASED, None, SEND_AT)
    assert isinstance(wiring.store().settle(settled, stale, stale.released(held.decision_id), SEND_AT), NotPending)
    assert logged(held.decision_id).state is State.CANCELLED


# ---- races: two deciders superseding the same pending follow-up ------------------------------


@pytest.mark.parametrize("first", ["evt-b", "evt-c"])
def test_two_deciders_superseding_the_same_follow_up_leave_exactly_one(aws: Any, first: str) -> None:
    # Given a held survey, and two deciders that read the ledger with it pending
    held = decision("evt-held")
    stale = commit(held)
    store = wiring.store()
    contenders = {
        e: decision(e, closed_at=NOW + timedelta(minutes=10), supersedes=(held.decision_id,))
        for e in ("evt-b", "evt-c")
    }
    second = "evt-c" if first == "evt-b" else "evt-b"
    # When both commit, in either order
    won = store.commit(contenders[first], stale, stale.after(contenders[first], RETENTION, NOW), NOW)
    lost = store.commit(contenders[second], stale, stale.after(contenders[second], RETENTION, NOW), NOW)
    # Then exactly one wins; the other is handed the fresh ledger to decide again on
    assert isinstance(won, Committed)
    assert isinstance(lost, LedgerChanged)
    assert lost.current.find(held.decision_id) is None
    # And the held survey is cancelled once, counted once, and one follow-up holds the slot
    assert logged(held.decision_id).state is State.CANCELLED
    assert [f.decision_id for f in ledger_of(aws, "cust-1").followups] == [contenders[first].decision_id]
    assert lifecycle_counts(NOW)["cancelled"] == {"SUPERSEDED_BY_NEWER_INTERACTION": 1}


def test_a_superseding_commit_never_cancels_a_follow_up_that_is_no_longer_pending(aws: Any) -> None:
    # Given a held survey already released, and a ledger read that (wrongly) still shows it pending
    held = decision("evt-held")
    stale = commit(held)
    fire(held.decision_id, SEND_AT)
    current = wiring.store().load(["cust-1"])["cust-1"]
    pretending = replace(current, followups=stale.followups)
    # When a decision superseding it is committed against that ledger
    newer = decision("evt-newer", supersedes=(held.decision_id,))
    from shared.adapters.store import LedgerStale

    outcome = wiring.store().commit(newer, pretending, pretending.after(newer, RETENTION, SEND_AT), SEND_AT)
    # Then the store answers with the ledger as the log tells it (released), to decide again on
    assert isinstance(outcome, LedgerStale)
    assert not outcome.current.find(held.decision_id).pending  # type: ignore[union-attr]
    # And nothing was written: the released survey stays released
    assert logged(held.decision_id).state is State.RELEASED
    assert wiring.store().get_decision(newer.decision_id) is None


def test_a_release_whose_announcement_failed_is_announced_by_the_streams_retry_and_counted_once(
    aws: Any, outbound: Any
) -> None:
    from botocore.exceptions import ClientError

    from shared.adapters import aws as aws_clients

    # Given a held survey, announced, and EventBridge refusing every PutEvents from then on
    held = decision("evt-held")
    commit(held)
    assert announced(outbound) == [("FollowUpScheduled", held.decision_id, "pending")]
    refusing = {"on": True}

    def refuse(**_: Any) -> None:
        if refusing["on"]:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "PutEvents")

    aws_clients.client("events").meta.events.register("before-call.events.PutEvents", refuse)
    # When its schedule fires, the release commits and the firing is done (it publishes nothing itself)
    assert fire(held.decision_id, SEND_AT)["changed"] is True
    assert logged(held.decision_id).state is State.RELEASED
    # And the log stream function, failing to publish it, reports its record for a retry, while the
    # log count function, the stream's other reader, counts it
    answer, counting = drain_stream(aws)
    assert len(answer["batchItemFailures"]) == 1
    assert counting == {"batchItemFailures": []}
    (summary,) = wiring.stats().days(SEND_AT.date(), SEND_AT.date())
    assert summary["released"] == 1
    # When EventBridge is back and the stream's batch is retried
    refusing["on"] = False
    # Then the release is announced, as of the moment it happened, and counted once
    assert [(e["detail-type"], e["detail"]["state_changed_at"]) for e in outbound()] == [
        ("FollowUpApproved", "2026-11-23T14:00:00.000000Z")
    ]
    assert lifecycle_counts(SEND_AT) == {"released": 1, "cancelled": {}}
    assert outbound() == []
