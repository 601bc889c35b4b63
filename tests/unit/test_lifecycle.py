"""The closed loop in the pure engine (issue 11): decisions held until their send time and
re-checked then, supersession by a newer interaction, the survey delay and freshness, and what
customers did with earlier follow-ups (responses, ignored surveys, failed deliveries, callbacks
not reached) shaping the next decision. Default policy unless a test says otherwise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.adapters import decision_log
from shared.adapters import ledger as ledger_items
from shared.domain import engine
from shared.domain.contact_state import contact_state
from shared.domain.contacts import ContactLedger, FollowUp, OptOut
from shared.domain.decision import Action, CancelReason, Decision, Reason, State
from shared.domain.events import InteractionClosed
from shared.domain.outcomes import FollowUpOutcome
from shared.domain.policy import Policy, default_policy
from tests.conftest import NOW, detail

POLICY = default_policy()
EMPTY = ContactLedger("cust-1")
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


def closed(n: int, closed_at: datetime, **fields: Any) -> InteractionClosed:
    """Interaction n of cust-1 (event evt-n unless given), closed at `closed_at`."""
    values = {"event_id": f"evt-{n}", "interaction_id": f"int-{n}", "closed_at": closed_at.isoformat(), **fields}
    return InteractionClosed.model_validate(detail(**values))


def decide(
    event: InteractionClosed, ledger: ContactLedger = EMPTY, now: datetime = NOW, policy: Policy = POLICY
) -> Decision:
    return engine.decide(event, ledger, policy, now)


def commit(ledger: ContactLedger, decision: Decision, now: datetime = NOW) -> ContactLedger:
    return ledger.after(decision, POLICY.ledger_retention, now)


def check(decision: Decision, rule: str) -> Any:
    return next(c for c in decision.explanation if c.rule == rule)


def survey(n: int, sent: datetime, **fields: Any) -> FollowUp:
    """A released survey of interaction old-n, sent at `sent`, its interaction closed 2 h before."""
    return FollowUp(Action.SURVEY, sent, f"old-{n}", f"dcn_old{n}", closed_at=sent - 2 * HOUR, **fields)


def callback(n: int, sent: datetime, **fields: Any) -> FollowUp:
    return FollowUp(Action.CALLBACK, sent, f"old-{n}", f"dcn_old{n}", closed_at=sent - HOUR, **fields)


def holding(*followups: FollowUp) -> ContactLedger:
    return ContactLedger("cust-1", version=len(followups) + 1, followups=followups)


def outcome(decision_id: str, kind: str, at: datetime = NOW - DAY, **fields: Any) -> FollowUpOutcome:
    return FollowUpOutcome.model_validate(
        {
            "outcome_id": f"o-{decision_id}-{kind}",
            "decision_id": decision_id,
            "type": kind,
            "occurred_at": at.isoformat(),
            **fields,
        }
    )


# --- state and the survey delay ----------------------------------------------------------------


def test_a_survey_waits_for_the_delay_after_the_interaction_and_is_held_pending() -> None:
    # Given a solved interaction that closed a minute ago, at midday UTC
    event = closed(1, NOW - MINUTE)
    # When the engine decides
    decision = decide(event)
    # Then the survey is held until two hours after the close, pending, and says why
    assert decision.action is Action.SURVEY
    assert decision.send_at == NOW - MINUTE + 2 * HOUR
    assert (decision.state, decision.state_reason, decision.state_changed_at) == (State.PENDING, None, NOW)
    assert decision.reasons == (Reason.SURVEY_ELIGIBLE, Reason.SURVEY_DELAYED)
    assert check(decision, "survey_delay").figures == {
        "delay_minutes": 120,
        "not_before": "2026-11-23T13:59:00.000000Z",
    }


def test_a_callback_is_never_delayed_and_is_released_at_once() -> None:
    # Given an unsolved interaction that closed a minute ago
    decision = decide(closed(1, NOW - MINUTE, outcome="unresolved"))
    # Then the callback goes now, released when decided, with no survey delay evaluated
    assert (decision.action, decision.send_at, decision.state) == (Action.CALLBACK, NOW, State.RELEASED)
    assert "survey_delay" not in [c.rule for c in decision.explanation]


def test_a_survey_decided_after_its_delay_is_released_at_once_and_a_suppression_is_suppressed() -> None:
    # Given an interaction closed three hours ago, and one of an excluded outcome
    late = decide(closed(1, NOW - 3 * HOUR))
    abandoned = decide(closed(2, NOW - 3 * HOUR, outcome="abandoned"))
    # Then the survey is released now; the abandoned one suppressed
    assert (late.send_at, late.state, late.reasons) == (NOW, State.RELEASED, (Reason.SURVEY_ELIGIBLE,))
    assert (abandoned.state, abandoned.send_at) == (State.SUPPRESSED, None)


def test_the_delay_is_followed_by_quiet_hours() -> None:
    # Given a solved interaction closing at 19:30 UTC: its delay ends at 21:30, inside quiet hours
    evening = datetime(2026, 11, 23, 19, 30, tzinfo=UTC)
    decision = decide(closed(1, evening), now=evening)
    # Then it is held to 09:00 the next morning, for both reasons
    assert decision.send_at == datetime(2026, 11, 24, 9, tzinfo=UTC)
    assert decision.reasons == (Reason.SURVEY_ELIGIBLE, Reason.SURVEY_DELAYED, Reason.QUIET_HOURS_DEFERRED)


def test_a_survey_that_would_go_out_past_its_freshness_is_not_held_at_all() -> None:
    # Given an interaction that closed 47 h ago, decided at 21:00 UTC (quiet hours until 09:00)
    at = datetime(2026, 11, 23, 21, tzinfo=UTC)
    decision = decide(closed(1, at - 47 * HOUR), now=at)
    # Then no survey: it could only go out 59 h after the close, past the 48 h freshness limit
    assert decision.reasons == (Reason.STALE_EVENT,)
    assert check(decision, "survey_freshness").figures == {"age_at_send_hours": 59.0, "limit_hours": 48}


def test_old_log_entries_without_a_lifecycle_derive_it() -> None:
    # Given a decision document written before the lifecycle existed
    doc = decide(closed(1, NOW - 3 * HOUR)).model_dump(mode="json", exclude={"state", "state_changed_at"})
    none = decide(closed(2, NOW, outcome="abandoned")).model_dump(mode="json", exclude={"state", "state_changed_at"})
    # When it is read
    approval, suppression = Decision.model_validate(doc), Decision.model_validate(none)
    # Then an approval was released and a none suppressed, both when decided
    assert (approval.state, approval.state_changed_at, approval.supersedes) == (State.RELEASED, NOW, ())
    assert suppression.state is State.SUPPRESSED


# --- supersession --------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome_of_newer", ["resolved", "unresolved", "abandoned"])
def test_a_newer_interaction_cancels_a_pending_survey_and_takes_its_slot(outcome_of_newer: str) -> None:
    # Given a survey of interaction 1 held by the delay
    first = decide(closed(1, NOW - MINUTE))
    ledger = commit(EMPTY, first)
    assert first.state is State.PENDING
    # When the customer's next interaction closes an hour later (whatever its outcome)
    later = NOW + HOUR
    decision = decide(closed(2, later - MINUTE, outcome=outcome_of_newer), ledger, later)
    # Then the new decision supersedes the pending survey, and says so
    assert decision.supersedes == (first.decision_id,)
    assert check(decision, "supersedes").figures == {"decision_ids": [first.decision_id]}
    # And it was decided with the slot free: a solved one gets its own survey (the 30-day cap
    # would otherwise refuse it)
    if outcome_of_newer == "resolved":
        assert decision.action is Action.SURVEY
    # And committing it removes the superseded follow-up
    after = commit(ledger, decision, later)
    assert after.find(first.decision_id) is None
    assert after.version == ledger.version + 1


def test_a_pending_callback_is_cancelled_by_a_newer_interaction_unless_it_was_abandoned() -> None:
    # Given a callback of interaction 1 held by quiet hours (decided at 22:00 UTC)
    night = datetime(2026, 11, 23, 22, tzinfo=UTC)
    first = decide(closed(1, night - MINUTE, outcome="unresolved"), now=night)
    ledger = commit(EMPTY, first, night)
    assert (first.state, first.send_at) == (State.PENDING, datetime(2026, 11, 24, 9, tzinfo=UTC))
    # When an abandoned call comes in at 23:00, and then a new unsolved interaction at 23:30
    abandoned = decide(closed(2, night + HOUR, outcome="abandoned"), ledger, night + HOUR)
    unsolved = decide(closed(3, night + 90 * MINUTE, outcome="unresolved"), ledger, night + 90 * MINUTE)
    # Then the abandoned attempt leaves the callback pending (it is needed more, not less)
    assert abandoned.supersedes == ()
    # And the unsolved interaction supersedes it and gets the callback, in the freed 7-day slot
    assert unsolved.supersedes == (first.decision_id,)
    assert unsolved.action is Action.CALLBACK
    # (without supersession the callback cap would refuse it)
    assert (
        decide(
            closed(3, night + 90 * MINUTE, outcome="unresolved"),
            commit(ledger, abandoned, night + HOUR).released(first.decision_id),
            night + 90 * MINUTE,
        ).reasons[0]
        is Reason.CALLBACK_CAP_REACHED
    )


def test_an_event_arriving_late_for_an_older_interaction_supersedes_nothing() -> None:
    # Given a pending survey of an interaction closed a minute ago
    first = decide(closed(1, NOW - MINUTE))
    ledger = commit(EMPTY, first)
    # When an event arrives for an interaction that closed before it
    decision = decide(closed(2, NOW - 30 * MINUTE), ledger)
    # Then nothing is superseded and the pending survey still blocks a second one
    assert decision.supersedes == ()
    assert Reason.SURVEY_CAP_REACHED in decision.reasons


def test_a_suppression_that_supersedes_frees_the_slot_in_the_ledger() -> None:
    # Given a pending survey
    first = decide(closed(1, NOW - MINUTE))
    ledger = commit(EMPTY, first)
    # When the customer's next interaction is abandoned (no follow-up for it)
    decision = decide(closed(2, NOW, outcome="abandoned"), ledger, NOW + MINUTE)
    # Then it is suppressed, still cancels the survey, and its commit removes it from the ledger
    assert (decision.state, decision.supersedes) == (State.SUPPRESSED, (first.decision_id,))
    after = commit(ledger, decision, NOW + MINUTE)
    assert (after.followups, after.version) == ((), ledger.version + 1)


# --- one follow-up per interaction, and the reopened-unresolved exception -------------------------


def test_a_surveyed_interaction_reopened_unsolved_gets_one_callback_and_never_a_second_survey() -> None:
    # Given interaction 1 surveyed (released) three days ago
    ledger = holding(FollowUp(Action.SURVEY, NOW - 3 * DAY, "int-1", "dcn_s", closed_at=NOW - 3 * DAY - 3 * HOUR))
    # When it is re-closed solved, then reopened unsolved, then again unsolved
    solved = decide(closed(1, NOW - 3 * HOUR, event_id="e-a"), ledger)
    reopened = decide(closed(1, NOW - 3 * HOUR, event_id="e-b", outcome="unresolved", reopen_count=1), ledger)
    again = decide(
        closed(1, NOW + DAY - HOUR, event_id="e-c", outcome="unresolved"), commit(ledger, reopened), NOW + DAY
    )
    # Then the solved re-close gets nothing (never a second survey)
    assert solved.reasons == (Reason.ALREADY_FOLLOWED_UP,)
    # And the reopened one gets its callback: the customer told us it is not solved
    assert reopened.action is Action.CALLBACK
    assert "came back unsolved" in check(reopened, "one_follow_up_per_interaction").message
    # And never a second callback
    assert again.reasons == (Reason.ALREADY_FOLLOWED_UP,)


def test_a_pending_survey_of_an_interaction_reopened_unsolved_is_replaced_by_the_callback() -> None:
    # Given a survey of interaction 1 held by the delay
    first = decide(closed(1, NOW - MINUTE))
    ledger = commit(EMPTY, first)
    # When the same interaction is re-closed unresolved half an hour later
    later = NOW + 30 * MINUTE
    reopened = decide(closed(1, later, event_id="e-re", outcome="unresolved", reopen_count=1), ledger, later)
    # Then the survey is superseded and the callback approved
    assert (reopened.action, reopened.supersedes) == (Action.CALLBACK, (first.decision_id,))
    # But a re-close that is solved leaves the survey pending and gets nothing
    solved = decide(closed(1, later, event_id="e-ok"), ledger, later)
    assert (solved.reasons, solved.supersedes) == ((Reason.ALREADY_FOLLOWED_UP,), ())


# --- outcomes and the caps -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "fields", "counts"),
    [
        ("callback_completed", {"reached": False}, False),
        ("callback_completed", {"reached": True, "resolved": False}, True),
        ("delivery_failed", {}, False),
    ],
)
def test_a_callback_that_did_not_reach_the_customer_frees_its_cap_slot(
    kind: str, fields: dict[str, Any], counts: bool
) -> None:
    # Given a callback released two days ago (cap: one per 7 days), and its outcome recorded
    ledger = holding(callback(1, NOW - 2 * DAY)).with_outcome(outcome("dcn_old1", kind, **fields))
    # When a new unsolved interaction is decided
    decision = decide(closed(2, NOW - MINUTE, outcome="unresolved"), ledger)
    # Then only a callback that reached the customer still counts against the cap
    assert ledger.followups[0].counts_against_caps is counts
    assert (decision.action is Action.CALLBACK) is not counts
    # And the interaction keeps its follow-up: no second one for it
    assert decide(closed(1, NOW, event_id="e-again", interaction_id="old-1", outcome="unresolved"), ledger).reasons == (
        Reason.ALREADY_FOLLOWED_UP,
    )


def test_a_survey_whose_delivery_failed_frees_its_cap_slot() -> None:
    # Given a survey released ten days ago (cap: one per 30 days) whose delivery failed
    ledger = holding(survey(1, NOW - 10 * DAY)).with_outcome(outcome("dcn_old1", "delivery_failed"))
    # Then a new survey is allowed; without the failure it would not be
    assert decide(closed(2, NOW - 3 * HOUR), ledger).action is Action.SURVEY
    assert decide(closed(2, NOW - 3 * HOUR), holding(survey(1, NOW - 10 * DAY))).reasons[0] is (
        Reason.SURVEY_CAP_REACHED
    )


def test_a_survey_answered_starts_a_90_day_cooldown() -> None:
    # Given a survey sent 100 days ago and answered `days_ago` days ago
    sent = NOW - 100 * DAY
    for days_ago, allowed in ((89, False), (90, True)):
        answered = NOW - days_ago * DAY
        ledger = holding(survey(1, sent)).with_outcome(outcome("dcn_old1", "survey_responded", answered, score=9))
        # When a solved interaction is decided now (sent now)
        decision = decide(closed(2, NOW - 3 * HOUR), ledger)
        # Then within 90 days of the response there is no survey; at exactly 90 days there is
        assert (decision.action is Action.SURVEY) is allowed, (days_ago, decision.reasons)
        figures = check(decision, "survey_cooldown_after_response").figures
        assert figures["last_response"] == answered.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert figures["cooldown_days"] == 90
        if not allowed:
            assert decision.reasons == (Reason.SURVEY_COOLDOWN_AFTER_RESPONSE,)
            assert figures["next_eligible"] == "2026-11-24T12:00:00.000000Z"


def ignored_three() -> ContactLedger:
    """Three released surveys sent 120, 80 and 40 days ago, none answered."""
    return holding(survey(1, NOW - 120 * DAY), survey(2, NOW - 80 * DAY), survey(3, NOW - 40 * DAY))


def test_three_surveys_ignored_in_a_row_pause_surveys_for_180_days() -> None:
    # Given three surveys ignored in a row (no caps in the way: 40 days since the last)
    ledger = ignored_three()
    # When a solved interaction is decided
    decision = decide(closed(4, NOW - 3 * HOUR), ledger)
    # Then no survey until 180 days after the end of the last one's 7-day window
    pause_end = NOW - 40 * DAY + 7 * DAY + 180 * DAY
    assert decision.reasons == (Reason.SURVEY_FATIGUE,)
    assert check(decision, "survey_fatigue").figures == {
        "ignored_in_a_row": 3,
        "threshold": 3,
        "pause_days": 180,
        "next_eligible": pause_end.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    # And a callback is not affected
    assert decide(closed(4, NOW - 3 * HOUR, outcome="unresolved"), ledger).action is Action.CALLBACK
    # And the pause ends: at its end a survey is allowed again, a second before it is not
    assert decide(closed(5, pause_end - 3 * HOUR), ledger, pause_end).action is Action.SURVEY
    assert decide(closed(5, pause_end - 3 * HOUR), ledger, pause_end - timedelta(seconds=1)).reasons == (
        Reason.SURVEY_FATIGUE,
    )


def test_a_response_ends_the_ignored_run() -> None:
    # Given three ignored surveys, the newest then answered (cooldown off, to see fatigue alone)
    policy = Policy.model_validate({**POLICY.document(), "survey_cooldown_after_response_days": 0})
    ledger = ignored_three().with_outcome(outcome("dcn_old3", "survey_responded", NOW - 30 * DAY))
    # Then the run is over and a survey is allowed
    decision = decide(closed(4, NOW - 3 * HOUR), ledger, policy=policy)
    assert decision.action is Action.SURVEY
    assert check(decision, "survey_fatigue").figures["ignored_in_a_row"] == 0


@pytest.mark.parametrize(
    "newest",
    [
        survey(3, NOW - 40 * DAY, delivery_failed=True),  # never delivered: nothing to ignore
        FollowUp(Action.SURVEY, NOW - 40 * DAY, "old-3", "dcn_old3"),  # stored before outcomes were collected
    ],
    ids=["delivery-failed", "legacy"],
)
def test_only_delivered_surveys_that_could_have_been_answered_count_as_ignored(newest: FollowUp) -> None:
    ledger = holding(survey(1, NOW - 120 * DAY), survey(2, NOW - 80 * DAY), newest)
    assert check(decide(closed(4, NOW - 3 * HOUR), ledger), "survey_fatigue").figures["ignored_in_a_row"] == 2


def test_a_survey_still_inside_its_window_is_not_ignored_yet() -> None:
    # Given two ignored surveys and a third sent six days ago (its 7-day window still open)
    ledger = holding(survey(1, NOW - 120 * DAY), survey(2, NOW - 80 * DAY), survey(3, NOW - 40 * DAY))
    record = engine.survey_record(ledger, POLICY, NOW - 34 * DAY + HOUR)
    # Then only two count as ignored then, and nothing is paused
    assert (record.ignored_in_a_row, record.fatigue_end) == (2, None)


def test_fatigue_can_be_switched_off_with_a_zero_pause() -> None:
    policy = Policy.model_validate({**POLICY.document(), "fatigue": {"pause_days": 0}})
    assert decide(closed(4, NOW - 3 * HOUR), ignored_three(), policy=policy).action is Action.SURVEY


# --- the release-time re-check -----------------------------------------------------------------


def pending_survey(**fields: Any) -> tuple[Decision, ContactLedger]:
    decision = decide(closed(1, NOW - MINUTE, **fields))
    assert decision.state is State.PENDING
    return decision, commit(EMPTY, decision)


def recheck(decision: Decision, ledger: ContactLedger, now: datetime | None, policy: Policy = POLICY) -> Any:
    assert now is not None
    return engine.recheck(ledger.find(decision.decision_id), decision, ledger, policy, now)


def test_a_pending_survey_nothing_happened_to_is_released_at_its_send_time() -> None:
    decision, ledger = pending_survey()
    state, reason, checks = recheck(decision, ledger, decision.send_at)
    assert (state, reason) == (State.RELEASED, None)
    assert [c.rule for c in checks] == ["still_pending", "opt_out", "survey_freshness", "policy_allows"]
    assert all(c.passed for c in checks)


def test_a_superseded_follow_up_is_cancelled_at_release() -> None:
    # Given a pending survey a newer interaction superseded (committed: gone from the ledger)
    decision, ledger = pending_survey()
    newer = decide(closed(2, NOW + HOUR), ledger, NOW + HOUR)
    ledger = commit(ledger, newer, NOW + HOUR)
    # When its schedule fires anyway
    state, reason, _ = recheck(decision, ledger, decision.send_at)
    # Then it is cancelled as superseded
    assert (state, reason) == (State.CANCELLED, CancelReason.SUPERSEDED_BY_NEWER_INTERACTION)


@pytest.mark.parametrize("kind", ["survey", "all"])
def test_an_opt_out_since_the_decision_cancels_at_release(kind: str) -> None:
    decision, ledger = pending_survey()
    opted = ContactLedger("cust-1", ledger.version + 1, ledger.followups, (OptOut(kind, "sms-stop", NOW),))
    assert recheck(decision, opted, decision.send_at)[:2] == (State.CANCELLED, CancelReason.OPTED_OUT)
    # (an opt-out of callbacks does not touch a survey)
    other = ContactLedger("cust-1", ledger.version + 1, ledger.followups, (OptOut("callback", "ivr", NOW),))
    assert recheck(decision, other, decision.send_at)[0] is State.RELEASED


def test_a_survey_released_past_its_freshness_expires() -> None:
    # Given a pending survey of an interaction closed at NOW - 1 min
    decision, ledger = pending_survey()
    closed_at = NOW - MINUTE
    # Then up to 48 h after the close it is released; a second later it expired
    assert recheck(decision, ledger, closed_at + 48 * HOUR)[0] is State.RELEASED
    state, reason, checks = recheck(decision, ledger, closed_at + 48 * HOUR + timedelta(seconds=1))
    assert (state, reason) == (State.CANCELLED, CancelReason.EXPIRED)
    assert checks[-1].figures["limit_hours"] == 48


@pytest.mark.parametrize(
    "document",
    [
        {"enabled": {"survey": False}},
        {"excluded_segments": ["vip"]},
        {"overrides": [{"scope": {"segment": "vip"}, "rules": {"enabled": {"survey": False}}}]},
    ],
    ids=["surveys-off", "segment-excluded", "override-switches-surveys-off"],
)
def test_a_policy_that_no_longer_allows_it_cancels_at_release(document: dict[str, Any]) -> None:
    decision, ledger = pending_survey(segment="vip")
    policy = Policy.model_validate({**POLICY.document(), **document, "version": 2})
    state, reason, checks = recheck(decision, ledger, decision.send_at, policy)
    assert (state, reason) == (State.CANCELLED, CancelReason.POLICY_FORBIDS)
    assert checks[-1].figures["policy_version"] == 2


def test_a_follow_up_already_released_is_not_cancelled_by_a_second_firing() -> None:
    decision, ledger = pending_survey()
    released = ledger.released(decision.decision_id)
    assert recheck(decision, released, NOW + 3 * HOUR)[:2] == (State.RELEASED, None)


# --- the ledger's lifecycle operations and their storage ----------------------------------------


def test_release_cancel_and_outcomes_each_move_the_ledger_version() -> None:
    decision, ledger = pending_survey()
    released = ledger.released(decision.decision_id)
    assert (released.pending(), released.version) == ((), ledger.version + 1)
    cancelled = ledger.cancelled(decision.decision_id)
    assert (cancelled.followups, cancelled.version) == ((), ledger.version + 1)
    answered = released.with_outcome(outcome(decision.decision_id, "survey_responded", NOW + 3 * HOUR, score=3))
    assert answered.find(decision.decision_id).responded_at == NOW + 3 * HOUR  # type: ignore[union-attr]
    assert answered.version == released.version + 1
    assert ledger.without([decision.decision_id]).version == ledger.version


moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC))


@given(
    kind=st.sampled_from([Action.SURVEY, Action.CALLBACK]),
    send_at=moments,
    state=st.sampled_from(["pending", "released"]),
    closed_at=st.none() | moments,
    responded_at=st.none() | moments,
    reached=st.none() | st.booleans(),
    resolved=st.none() | st.booleans(),
    failed=st.booleans(),
)
def test_a_follow_up_round_trips_through_its_ledger_item(**fields: Any) -> None:
    followup = FollowUp(
        fields["kind"],
        fields["send_at"],
        "int-1",
        "dcn_1",
        state=fields["state"],
        closed_at=fields["closed_at"],
        responded_at=fields["responded_at"],
        reached=fields["reached"],
        resolved=fields["resolved"],
        delivery_failed=fields["failed"],
    )
    assert ledger_items.followup_from(ledger_items.followup_value(followup)) == followup


def test_a_ledger_entry_stored_before_the_lifecycle_reads_as_released_with_no_outcome() -> None:
    legacy = {
        "kind": {"S": "survey"},
        "send_at": {"S": "2026-11-01T09:00:00.000000Z"},
        "interaction_id": {"S": "int-1"},
        "decision_id": {"S": "dcn_1"},
    }
    followup = ledger_items.followup_from(legacy)
    assert (followup.state, followup.closed_at, followup.responded_at, followup.counts_against_caps) == (
        "released",
        None,
        None,
        True,
    )


def test_the_log_item_carries_the_lifecycle_and_its_own_attributes_win_over_the_document() -> None:
    # Given a pending decision that supersedes another, logged
    first = decide(closed(1, NOW - MINUTE))
    newer = decide(closed(2, NOW + HOUR - MINUTE), commit(EMPTY, first), NOW + HOUR)
    item = decision_log.to_item(newer, timedelta(days=365))
    # Then its state is a top-level attribute (supersedes, which no query reads, is in its doc),
    # and it reads back the same
    assert item["state"] == {"S": "pending"} and "supersedes" not in item
    assert decision_log.from_item(item) == newer
    assert decision_log.from_item(item).supersedes == (first.decision_id,)
    # When a cancellation updates the attributes in place (as the store's Update does)
    update = decision_log.state_update(newer.decision_id, State.CANCELLED, CancelReason.EXPIRED, NOW + DAY)
    assert update["ConditionExpression"] == "#state = :expected"
    values = update["ExpressionAttributeValues"]
    item |= {"state": values[":state"], "state_reason": values[":reason"], "state_changed_at": values[":at"]}
    # Then the decision read back is cancelled, for that reason, at that time
    read = decision_log.from_item(item)
    assert (read.state, read.state_reason, read.state_changed_at) == (State.CANCELLED, CancelReason.EXPIRED, NOW + DAY)


# --- contact state ------------------------------------------------------------------------------


def test_contact_state_lists_pending_follow_ups_and_the_survey_record() -> None:
    # Given three ignored surveys and a pending callback
    pending = decide(
        closed(9, datetime(2026, 11, 23, 21, tzinfo=UTC), outcome="unresolved"),
        ignored_three(),
        datetime(2026, 11, 23, 21, 1, tzinfo=UTC),
    )
    ledger = commit(ignored_three(), pending, NOW)
    # When the admin asks for the contact state
    state = contact_state(ledger, POLICY, NOW)
    # Then it lists the pending callback with its send time
    assert state["pending_follow_ups"] == [
        {
            "decision_id": pending.decision_id,
            "kind": "callback",
            "send_at": "2026-11-24T09:00:00.000000Z",
            "interaction_id": "int-9",
        }
    ]
    # And the record: no response, three ignored, and the fatigue end, which the next survey waits for
    record = state["survey_record"]
    fatigue_end = "2027-04-19T12:00:00.000000Z"  # 40 days ago + 7 + 180 days
    assert (record["responses"], record["ignored_in_a_row"], record["fatigue_until"]) == (0, 3, fatigue_end)
    assert record["cooldown_until"] is None
    assert state["next_survey_allowed"] == fatigue_end


def test_contact_state_shows_the_cooldown_after_a_response() -> None:
    ledger = holding(survey(1, NOW - 20 * DAY)).with_outcome(outcome("dcn_old1", "survey_responded", NOW - 19 * DAY))
    state = contact_state(ledger, POLICY, NOW)
    assert state["survey_record"]["cooldown_until"] == (NOW + 71 * DAY).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert state["next_survey_allowed"] == state["survey_record"]["cooldown_until"]


# --- policy fields -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"survey_delay_minutes": -1}, ("survey_delay_minutes",)),
        ({"survey_freshness_hours": 0}, ("survey_freshness_hours",)),
        ({"survey_cooldown_after_response_days": -5}, ("survey_cooldown_after_response_days",)),
        ({"fatigue": {"ignored_in_a_row": 0}}, ("fatigue", "ignored_in_a_row")),
        ({"fatigue": {"ignore_after_days": 0}}, ("fatigue", "ignore_after_days")),
        ({"fatigue": {"pauses": 3}}, ("fatigue", "pauses")),
        ({"overrides": [{"scope": {"brand": "a"}, "rules": {"fatigue": None}}]}, ("overrides", 0, "rules", "fatigue")),
    ],
)
def test_the_new_policy_fields_are_validated_at_their_path(document: dict[str, Any], path: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as refused:
        Policy.model_validate(document)
    assert path in {e["loc"] for e in refused.value.errors()}


def test_an_override_changes_fatigue_field_by_field_and_round_trips() -> None:
    policy = Policy.model_validate(
        {
            "overrides": [
                {"scope": {"segment": "vip"}, "rules": {"fatigue": {"pause_days": 30}, "survey_delay_minutes": 0}}
            ]
        }
    )
    rules, _ = policy.rules_for(segment="vip")
    assert (rules.fatigue.pause_days, rules.fatigue.ignored_in_a_row, rules.survey_delay_minutes) == (30, 3, 0)
    assert Policy.model_validate(policy.document()).document() == policy.document()


def test_an_override_changing_only_survey_lifecycle_rules_of_an_excluded_segment_is_refused() -> None:
    with pytest.raises(ValidationError, match="never surveyed"):
        Policy.model_validate(
            {"excluded_segments": ["vip"], "overrides": [{"scope": {"segment": "vip"}, "rules": {"fatigue": {}}}]}
        )
