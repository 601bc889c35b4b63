"""The pure decision engine against the default policy, rule by rule.

Each rule and each reason code has at least one test that fails if the rule is removed; window
and quiet-hour edges are tested to the second. Ledgers are built by feeding earlier approvals
through the engine and `ContactLedger.after`, or directly from `FollowUp`s.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.domain import engine
from shared.domain.contacts import ContactLedger, FollowUp
from shared.domain.decision import Action, Decision, DecisionInput, Reason, RuleCheck, State, decision_id_for
from shared.domain.events import InteractionClosed
from shared.domain.policy import Caps, Enabled, Policy, Skip, Window, default_policy
from tests.conftest import NOW, detail

# The default policy, with surveys sent at once and no fatigue pause (these ledgers have no
# outcomes, so every survey in them looks ignored): these tests pin each rule at the decision
# instant; the survey delay, fatigue and the rest of the lifecycle are tested in test_lifecycle.py.
POLICY = Policy.model_validate({**default_policy().document(), "survey_delay_minutes": 0, "fatigue": {"pause_days": 0}})
EMPTY = ContactLedger("cust-1")
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def closed(n: int = 1, at: datetime = NOW, **overrides: Any) -> InteractionClosed:
    """Interaction n of cust-1, closed a minute before `at` unless `closed_at` is given."""
    fields: dict[str, Any] = {
        "event_id": f"evt-{n}",
        "interaction_id": f"int-{n}",
        "closed_at": (at - MINUTE).isoformat(),
        **overrides,
    }
    return InteractionClosed.model_validate(detail(**fields))


def unsolved(n: int = 1, at: datetime = NOW, **overrides: Any) -> InteractionClosed:
    return closed(n, at, outcome="unresolved", **overrides)


def decide(
    event: InteractionClosed, ledger: ContactLedger = EMPTY, now: datetime = NOW, policy: Policy = POLICY
) -> Decision:
    return engine.decide(event, ledger, policy, now)


def approve(
    ledger: ContactLedger, event: InteractionClosed, now: datetime, policy: Policy = POLICY, *, release: bool = True
) -> ContactLedger:
    """The ledger once the engine's approval of `event` at `now` is committed and, unless told
    otherwise, released at its send time (a follow-up held by quiet hours is otherwise pending,
    and a newer interaction would supersede it)."""
    decision = engine.decide(event, ledger, policy, now)
    assert decision.approved, decision.reasons
    after = ledger.after(decision, policy.ledger_retention, now)
    return after.released(decision.decision_id) if release and decision.state is State.PENDING else after


def sent(*followups: tuple[Action, datetime]) -> ContactLedger:
    """A ledger holding earlier follow-ups of other interactions, sent at the given instants."""
    items = tuple(FollowUp(kind, at, f"old-{i}", f"dcn_old{i}") for i, (kind, at) in enumerate(followups))
    return ContactLedger("cust-1", version=len(items), followups=items)


def check(decision: Decision, rule: str) -> RuleCheck:
    return next(c for c in decision.explanation if c.rule == rule)


def failed(decision: Decision) -> list[str]:
    return [c.rule for c in decision.explanation if not c.passed]


def interaction_drawing(low: float, high: float) -> str:
    """An interaction id whose deterministic sample draw lies in [low, high)."""
    return next(f"int-s{i}" for i in range(10_000) if low <= engine.sample_draw(f"int-s{i}") < high)


# --- the decision record -------------------------------------------------------------------------


def test_a_solved_interaction_with_no_history_gets_a_survey_now() -> None:
    # Given a resolved interaction of a customer never contacted, closed an hour ago at midday UTC
    event = InteractionClosed.model_validate(detail())
    # When the engine decides
    decision = decide(event)
    # Then a survey is approved, to be sent now, for that one reason
    assert decision.action is Action.SURVEY
    assert decision.reasons == (Reason.SURVEY_ELIGIBLE,)
    assert decision.reason is Reason.SURVEY_ELIGIBLE
    assert decision.approved
    assert decision.send_at == NOW
    # And every rule it went through passed and is explained
    assert all(c.passed for c in decision.explanation)
    assert [c.rule for c in decision.explanation] == [
        "supersedes",
        "opt_out",
        "one_follow_up_per_interaction",
        "skip_outcomes",
        "max_event_age",
        "survey_delay",
        "quiet_hours",
        "callback_triggers",
        "survey_enabled",
        "survey_opt_out",
        "excluded_segments",
        "min_handle_time",
        "survey_sample",
        "survey_freshness",
        "survey_cooldown_after_response",
        "survey_fatigue",
        "survey_cap_30_days",
        "survey_cap_365_days",
        "min_gap_before_survey",
    ]


def test_the_decision_carries_ids_policy_version_times_and_the_input_fields() -> None:
    # Given an event with every optional field, a policy at version 7 and a non-UTC "now"
    event = closed(
        5,
        handle_seconds=300,
        contact_attempts=2,
        reopen_count=0,
        sentiment=-0.2,
        customer_timezone="Europe/Paris",
        segment="gold",
        brand="acme",
        channel="chat",
        attributes={"queue": "billing"},
    )
    policy = POLICY.model_copy(update={"version": 7})
    now = NOW.astimezone(ZoneInfo("Asia/Tokyo"))
    # When the engine decides
    decision = decide(event, now=now, policy=policy)
    # Then the record names the event, the interaction, the customer and the policy version
    assert decision.decision_id == decision_id_for("cust-1", "evt-5")
    assert decision.decision_id.startswith("dcn_")
    assert (decision.event_id, decision.interaction_id, decision.customer_id) == ("evt-5", "int-5", "cust-1")
    assert decision.policy_version == 7
    assert decision.policy_scope == "default"
    # And its times are UTC instants
    assert decision.decided_at == NOW
    assert decision.decided_at.utcoffset() == timedelta(0)
    assert decision.send_at == NOW
    # And it keeps the event fields the engine used (not the free-form attributes)
    assert decision.input == DecisionInput.of(event)
    assert decision.input.model_dump(mode="json") == {
        "channel": "chat",
        "closed_at": "2026-11-23T11:59:00.000000Z",
        "outcome": "resolved",
        "handle_seconds": 300,
        "contact_attempts": 2,
        "reopen_count": 0,
        "sentiment": -0.2,
        "customer_timezone": "Europe/Paris",
        "segment": "gold",
        "brand": "acme",
    }


def test_the_decision_id_depends_on_the_customer_and_event_id_alone() -> None:
    # Given the same event decided twice on different ledgers and clocks, another event, and
    # another customer's event that reuses the same event_id
    event = closed(1)
    first = decide(event)
    again = decide(event, sent((Action.SURVEY, NOW - DAY)), now=NOW + HOUR)
    other = decide(closed(2))
    elsewhere = decide(closed(1, customer_id="cust-2"))
    # Then the same event names the same decision, whatever the outcome; another event another one
    assert first.action is Action.SURVEY
    assert again.action is Action.NONE
    assert first.decision_id == again.decision_id == decision_id_for("cust-1", "evt-1")
    assert other.decision_id != first.decision_id
    # And another customer's event never names this customer's decision, whatever its event_id
    assert elsewhere.event_id == first.event_id
    assert elsewhere.decision_id != first.decision_id


def test_the_same_inputs_give_the_same_decision() -> None:
    # Given one event, ledger and time
    ledger = sent((Action.CALLBACK, NOW - 2 * DAY))
    # When decided twice
    # Then the decisions are equal field for field
    assert decide(unsolved(), ledger) == decide(unsolved(), ledger)


def test_a_suppression_has_no_send_time() -> None:
    # Given an abandoned interaction
    decision = decide(closed(outcome="abandoned"))
    # Then nothing is to be sent
    assert decision.action is Action.NONE
    assert not decision.approved
    assert decision.send_at is None
    assert decision.model_dump(mode="json")["send_at"] is None


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        engine.decide(closed(), EMPTY, POLICY, NOW.replace(tzinfo=None))


def test_the_default_policy_file_is_the_model_default() -> None:
    # The tests below use default_policy(); the JSON file and the model defaults must agree
    assert default_policy() == Policy()


# --- interactions that never get a follow-up ------------------------------------------------------


def test_an_abandoned_interaction_gets_nothing_even_when_it_looks_unsolved() -> None:
    # Given an abandoned interaction with every callback signal
    event = closed(outcome="abandoned", sentiment=-1.0, contact_attempts=5, reopen_count=2)
    # When the engine decides
    decision = decide(event)
    # Then nothing, because it was abandoned, and the explanation names the outcome
    assert decision.action is Action.NONE
    assert decision.reasons == (Reason.ABANDONED_INTERACTION,)
    assert failed(decision) == ["skip_outcomes"]
    assert check(decision, "skip_outcomes").figures == {"outcome": "abandoned"}
    assert check(decision, "skip_outcomes").message == "outcome abandoned never gets a follow-up"


def test_an_abandoned_interaction_is_only_skipped_because_of_the_policy() -> None:
    # Given a policy that skips no outcome
    policy = POLICY.model_copy(update={"skip": Skip(outcomes=frozenset())})
    # When an abandoned interaction is decided
    decision = decide(closed(outcome="abandoned"), policy=policy)
    # Then it gets a survey: the default's refusal comes from the skip rule
    assert decision.action is Action.SURVEY


@pytest.mark.parametrize(
    ("age", "action", "reasons"),
    [
        (72 * HOUR - SECOND, Action.CALLBACK, (Reason.CALLBACK_UNRESOLVED,)),
        (72 * HOUR, Action.CALLBACK, (Reason.CALLBACK_UNRESOLVED,)),
        (72 * HOUR + SECOND, Action.NONE, (Reason.STALE_EVENT,)),
        (10 * DAY, Action.NONE, (Reason.STALE_EVENT,)),
    ],
    ids=["72h-1s", "exactly-72h", "72h+1s", "10d"],
)
def test_an_interaction_closed_more_than_72_hours_ago_is_stale(
    age: timedelta, action: Action, reasons: tuple[Reason, ...]
) -> None:
    # Given an unsolved interaction closed `age` before now (a survey has its own, shorter
    # freshness limit: test_lifecycle.py)
    event = unsolved(closed_at=(NOW - age).isoformat())
    # When the engine decides
    decision = decide(event)
    # Then up to exactly 72 h it is followed up, beyond it is stale
    assert decision.action is action
    assert decision.reasons == reasons
    age_check = check(decision, "max_event_age")
    assert age_check.passed is (action is Action.CALLBACK)
    assert age_check.figures["limit_hours"] == 72


def test_a_stale_event_explains_its_age() -> None:
    # Given an interaction closed four days ago, unresolved
    decision = decide(unsolved(closed_at=(NOW - 4 * DAY).isoformat()))
    # Then no callback either, and the explanation says how old it is against the limit
    assert decision.reasons == (Reason.STALE_EVENT,)
    assert check(decision, "max_event_age").figures == {"age_hours": 96.0, "limit_hours": 72}
    assert check(decision, "max_event_age").message == "closed 96 h ago, limit 72 h"


# --- callbacks when the problem is not solved ------------------------------------------------------


@pytest.mark.parametrize(
    ("signal", "reason"),
    [
        ({"outcome": "unresolved"}, Reason.CALLBACK_UNRESOLVED),
        ({"outcome": "escalated"}, Reason.CALLBACK_ESCALATED),
        ({"sentiment": -0.5}, Reason.CALLBACK_NEGATIVE_SENTIMENT),
        ({"sentiment": -1.0}, Reason.CALLBACK_NEGATIVE_SENTIMENT),
        ({"contact_attempts": 3}, Reason.CALLBACK_REPEAT_CONTACT),
        ({"contact_attempts": 10}, Reason.CALLBACK_REPEAT_CONTACT),
        ({"reopen_count": 1}, Reason.CALLBACK_REOPENED),
    ],
    ids=["unresolved", "escalated", "sentiment=-0.5", "sentiment=-1", "attempts=3", "attempts=10", "reopened=1"],
)
def test_an_unsolved_problem_gets_a_callback_not_a_survey(signal: dict[str, Any], reason: Reason) -> None:
    # Given an interaction with one sign that the problem is not solved
    event = closed(**signal)
    # When the engine decides
    decision = decide(event)
    # Then a callback, now, with that sign as the deciding reason
    assert decision.action is Action.CALLBACK
    assert decision.reasons == (reason,)
    assert decision.send_at == NOW
    assert check(decision, "callback_triggers").figures == {"triggers": [str(reason)]}


@pytest.mark.parametrize(
    "signal",
    [{"sentiment": -0.49}, {"sentiment": 0.9}, {"contact_attempts": 2}, {"reopen_count": 0}, {"outcome": "resolved"}],
    ids=["sentiment=-0.49", "sentiment=0.9", "attempts=2", "reopened=0", "resolved"],
)
def test_just_below_a_callback_threshold_the_customer_gets_a_survey(signal: dict[str, Any]) -> None:
    # Given a resolved interaction whose signal is just short of a callback trigger
    decision = decide(closed(**signal))
    # Then it is a solved problem: a survey
    assert decision.action is Action.SURVEY
    assert check(decision, "callback_triggers").figures == {"triggers": []}


def test_every_callback_trigger_present_is_listed_in_order() -> None:
    # Given an escalated interaction with every other sign too
    event = closed(outcome="escalated", sentiment=-0.8, contact_attempts=4, reopen_count=2)
    # When the engine decides
    decision = decide(event)
    # Then one callback, and the reasons list each sign, outcome first
    assert decision.action is Action.CALLBACK
    assert decision.reasons == (
        Reason.CALLBACK_ESCALATED,
        Reason.CALLBACK_NEGATIVE_SENTIMENT,
        Reason.CALLBACK_REPEAT_CONTACT,
        Reason.CALLBACK_REOPENED,
    )
    assert check(decision, "callback_triggers").message == (
        "problem not solved: CALLBACK_ESCALATED, CALLBACK_NEGATIVE_SENTIMENT, "
        "CALLBACK_REPEAT_CONTACT, CALLBACK_REOPENED"
    )


@pytest.mark.parametrize(
    ("earlier", "action", "reasons"),
    [
        (7 * DAY - SECOND, Action.NONE, (Reason.CALLBACK_CAP_REACHED, Reason.CALLBACK_UNRESOLVED)),
        (7 * DAY, Action.CALLBACK, (Reason.CALLBACK_UNRESOLVED,)),
    ],
    ids=["7d-1s", "exactly-7d"],
)
def test_at_most_one_callback_per_customer_per_seven_days(
    earlier: timedelta, action: Action, reasons: tuple[Reason, ...]
) -> None:
    # Given a callback approved by the engine for another interaction `earlier` ago
    ledger = approve(EMPTY, unsolved(1, NOW - earlier), NOW - earlier)
    # When a second unsolved interaction is decided now
    decision = decide(unsolved(2), ledger)
    # Then the second callback waits exactly seven days after the first's send time
    assert decision.action is action
    assert decision.reasons == reasons


def test_an_unsolved_problem_over_the_callback_cap_gets_nothing_not_a_survey() -> None:
    # Given a customer called back two days ago and never surveyed
    ledger = sent((Action.CALLBACK, NOW - 2 * DAY))
    # When a new interaction closes unsolved, with surveys otherwise eligible
    decision = decide(closed(2, sentiment=-0.7), ledger)
    # Then nothing: an unsolved problem never gets a survey
    assert decision.action is Action.NONE
    assert decision.reasons == (Reason.CALLBACK_CAP_REACHED, Reason.CALLBACK_NEGATIVE_SENTIMENT)
    assert decision.send_at is None
    assert not any(c.rule.startswith("survey") for c in decision.explanation)


def test_the_callback_cap_explains_the_count_and_the_next_eligible_time_which_is_right() -> None:
    # Given a callback sent two days ago
    ledger = sent((Action.CALLBACK, NOW - 2 * DAY))
    # When another callback is needed now
    decision = decide(unsolved(2), ledger)
    # Then it is refused with the count, the cap and when the next one fits
    cap = check(decision, "callback_cap_7_days")
    assert not cap.passed
    assert cap.message == "1 callback in the last 7 days, cap 1, next eligible 2026-11-28T12:00Z"
    assert cap.figures == {
        "count": 1,
        "cap": 1,
        "window": "7 days",
        "next_eligible": "2026-11-28T12:00:00.000000Z",
    }
    # And a callback at that next eligible time is accepted, a second before it is not
    next_eligible = NOW + 5 * DAY
    assert decide(unsolved(3, next_eligible), ledger, next_eligible).action is Action.CALLBACK
    assert decide(unsolved(3, next_eligible), ledger, next_eligible - SECOND).action is Action.NONE


def test_an_earlier_survey_never_blocks_a_needed_callback() -> None:
    # Given a survey approved a minute ago (and the survey caps full for the year)
    ledger = sent(
        (Action.SURVEY, NOW - 200 * DAY),
        (Action.SURVEY, NOW - 150 * DAY),
        (Action.SURVEY, NOW - 100 * DAY),
    )
    ledger = approve(ledger, closed(1, NOW - MINUTE), NOW - MINUTE)
    # When an unsolved interaction closes now
    decision = decide(unsolved(2), ledger)
    # Then the callback goes out now: neither survey caps nor the survey cooldown apply to it
    assert decision.action is Action.CALLBACK
    assert decision.reasons == (Reason.CALLBACK_UNRESOLVED,)
    assert decision.send_at == NOW


def test_callbacks_do_not_count_against_the_survey_caps() -> None:
    # Given a callback four days ago (outside the survey cooldown)
    ledger = sent((Action.CALLBACK, NOW - 4 * DAY))
    # When a solved interaction closes
    decision = decide(closed(2), ledger)
    # Then it gets a survey, and the survey caps count no survey
    assert decision.action is Action.SURVEY
    assert check(decision, "survey_cap_30_days").figures["count"] == 0


# --- survey caps ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("earlier", "action", "reasons"),
    [
        (30 * DAY - SECOND, Action.NONE, (Reason.SURVEY_CAP_REACHED,)),
        (30 * DAY, Action.SURVEY, (Reason.SURVEY_ELIGIBLE,)),
        (30 * DAY + SECOND, Action.SURVEY, (Reason.SURVEY_ELIGIBLE,)),
    ],
    ids=["30d-1s", "exactly-30d", "30d+1s"],
)
def test_at_most_one_survey_per_customer_per_thirty_days(
    earlier: timedelta, action: Action, reasons: tuple[Reason, ...]
) -> None:
    # Given a survey approved by the engine `earlier` ago
    ledger = approve(EMPTY, closed(1, NOW - earlier), NOW - earlier)
    # When another solved interaction is decided now
    decision = decide(closed(2), ledger)
    # Then a survey exactly 30 days after the previous send time is allowed, a second earlier is not
    assert decision.action is action
    assert decision.reasons == reasons


def test_the_survey_cap_message_names_the_count_the_cap_and_the_next_eligible_time() -> None:
    # Given a survey sent on 2026-11-03 at 10:00 UTC
    ledger = sent((Action.SURVEY, utc(2026, 11, 3, 10)))
    # When another survey would go out on 2026-11-23 at noon
    decision = decide(closed(2), ledger)
    # Then it is refused, and the explanation says why, with the figures
    assert decision.reasons == (Reason.SURVEY_CAP_REACHED,)
    assert failed(decision) == ["survey_cap_30_days"]
    cap = check(decision, "survey_cap_30_days")
    assert cap.message == "1 survey in the last 30 days, cap 1, next eligible 2026-12-03T10:00Z"
    assert cap.figures == {
        "count": 1,
        "cap": 1,
        "window": "30 days",
        "next_eligible": "2026-12-03T10:00:00.000000Z",
    }
    assert check(decision, "survey_cap_365_days").figures["count"] == 1
    # And a survey at that next eligible time is accepted
    at = utc(2026, 12, 3, 10)
    assert decide(closed(3, at), ledger, at).action is Action.SURVEY


def test_the_fifth_survey_in_365_days_is_refused_even_thirty_days_apart() -> None:
    # Given four surveys approved 30 days apart from 2026-01-10
    first = utc(2026, 1, 10, 12)
    ledger = EMPTY
    for n in range(4):
        ledger = approve(ledger, closed(n, first + n * 30 * DAY), first + n * 30 * DAY)
    assert len(ledger.followups) == 4
    # When a fifth one comes 30 days after the fourth
    fifth = first + 4 * 30 * DAY
    decision = decide(closed(9, fifth), ledger, fifth)
    # Then the yearly cap refuses it, while the 30-day cap is satisfied
    assert decision.action is Action.NONE
    assert decision.reasons == (Reason.SURVEY_CAP_REACHED,)
    assert failed(decision) == ["survey_cap_365_days"]
    year = check(decision, "survey_cap_365_days")
    assert year.message == "4 surveys in the last 365 days, cap 4, next eligible 2027-01-10T12:00Z"
    assert year.figures["next_eligible"] == "2027-01-10T12:00:00.000000Z"
    # And at that next eligible time, when the first leaves the window, a survey is accepted
    again = first + 365 * DAY
    assert decide(closed(10, again), ledger, again).action is Action.SURVEY
    assert decide(closed(10, again), ledger, again - SECOND).action is Action.NONE


def test_a_survey_blocked_by_a_cap_and_the_cooldown_reports_both() -> None:
    # Given a survey sent a day ago
    ledger = sent((Action.SURVEY, NOW - DAY))
    # When another solved interaction closes
    decision = decide(closed(2), ledger)
    # Then both the 30-day cap and the contact cooldown are named
    assert decision.reasons == (Reason.SURVEY_CAP_REACHED, Reason.CONTACT_COOLDOWN)
    assert failed(decision) == ["survey_cap_30_days", "min_gap_before_survey"]


# --- the cooldown before a survey --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("earlier", "action", "reasons"),
    [
        (HOUR, Action.NONE, (Reason.CONTACT_COOLDOWN,)),
        (72 * HOUR - SECOND, Action.NONE, (Reason.CONTACT_COOLDOWN,)),
        (72 * HOUR, Action.SURVEY, (Reason.SURVEY_ELIGIBLE,)),
    ],
    ids=["1h", "72h-1s", "exactly-72h"],
)
def test_a_survey_needs_72_hours_since_the_last_follow_up_of_any_kind(
    earlier: timedelta, action: Action, reasons: tuple[Reason, ...]
) -> None:
    # Given a callback approved by the engine `earlier` ago
    ledger = approve(EMPTY, unsolved(1, NOW - earlier), NOW - earlier)
    # When a solved interaction closes now
    decision = decide(closed(2), ledger)
    # Then no survey until 72 h after the callback's send time
    assert decision.action is action
    assert decision.reasons == reasons


def test_the_cooldown_explains_the_last_contact_and_the_next_eligible_time_which_is_right() -> None:
    # Given a callback sent ten hours ago
    ledger = sent((Action.CALLBACK, NOW - 10 * HOUR))
    # When a survey is due now
    decision = decide(closed(2), ledger)
    # Then the cooldown refuses it and says since when and until when
    gap = check(decision, "min_gap_before_survey")
    assert not gap.passed
    assert gap.message == (
        "a follow-up at 2026-11-23T02:00Z, surveys need 72 h from any follow-up, next eligible 2026-11-26T02:00Z"
    )
    assert gap.figures == {
        "last_follow_up": "2026-11-23T02:00:00.000000Z",
        "gap_hours": 72,
        "next_eligible": "2026-11-26T02:00:00.000000Z",
    }
    # And at that time (in a zone where it is daytime) a survey is accepted
    at = utc(2026, 11, 26, 2)
    assert decide(closed(3, at, customer_timezone="Asia/Tokyo"), ledger, at).action is Action.SURVEY


def test_a_follow_up_scheduled_later_also_blocks_a_survey_within_72_hours_before_it() -> None:
    # Given a survey deferred by quiet hours to tomorrow 09:00 UTC, decided at 21:00, still pending
    evening = utc(2026, 11, 22, 21)
    ledger = approve(EMPTY, closed(1, evening), evening, release=False)
    assert ledger.followups[0].send_at == utc(2026, 11, 23, 9)
    # When at 23:00 UTC a callback, then a survey for a customer in Los Angeles (15:00 local) come,
    # for interactions that closed before interaction 1 (delivered late, so they supersede nothing)
    late, before = utc(2026, 11, 22, 23), (evening - 2 * MINUTE).isoformat()
    callback = decide(unsolved(2, late, customer_timezone="America/Los_Angeles", closed_at=before), ledger, late)
    survey = decide(closed(3, late, customer_timezone="America/Los_Angeles", closed_at=before), ledger, late)
    assert callback.supersedes == survey.supersedes == ()
    # Then the callback goes now, but the survey is refused: it would come 10 h before another one
    assert (callback.action, callback.send_at) == (Action.CALLBACK, late)
    assert survey.reasons == (Reason.SURVEY_CAP_REACHED, Reason.CONTACT_COOLDOWN)


# --- one follow-up per interaction -------------------------------------------------------------------


def test_an_interaction_re_closed_after_a_follow_up_gets_nothing_more() -> None:
    # Given a callback approved for interaction 1
    first = engine.decide(unsolved(1, NOW - 10 * DAY), EMPTY, POLICY, NOW - 10 * DAY)
    ledger = EMPTY.after(first, POLICY.ledger_retention, NOW - 10 * DAY)
    # When the interaction is re-closed three times, still unsolved and with no cap in the way
    decisions = [
        decide(unsolved(1, NOW + k * DAY, event_id=f"evt-reclose-{k}", reopen_count=k + 1), ledger, NOW + k * DAY)
        for k in range(3)
    ]
    # Then each re-close is refused, naming the earlier decision
    for decision in decisions:
        assert decision.action is Action.NONE
        assert decision.reasons == (Reason.ALREADY_FOLLOWED_UP,)
        assert failed(decision) == ["one_follow_up_per_interaction"]
        assert check(decision, "one_follow_up_per_interaction").figures == {"earlier_decision_id": first.decision_id}
        assert first.decision_id in check(decision, "one_follow_up_per_interaction").message
    # And another interaction of the same customer is not affected
    assert decide(unsolved(2), ledger).action is Action.CALLBACK


def test_an_interaction_suppressed_earlier_can_still_get_its_one_follow_up() -> None:
    # Given interaction 1 refused a callback by the cap (no slot taken)
    ledger = sent((Action.CALLBACK, NOW - 2 * DAY))
    assert decide(unsolved(1), ledger).action is Action.NONE
    # When it is re-closed after the cap frees up
    later = NOW + 6 * DAY
    decision = decide(unsolved(1, later, event_id="evt-reclosed"), ledger, later)
    # Then it gets its callback
    assert decision.action is Action.CALLBACK


# --- quiet hours -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "send_at"),
    [
        (utc(2026, 11, 23, 19, 59, 59), utc(2026, 11, 23, 19, 59, 59)),
        (utc(2026, 11, 23, 20, 0, 0), utc(2026, 11, 24, 9)),
        (utc(2026, 11, 23, 23, 59, 59), utc(2026, 11, 24, 9)),
        (utc(2026, 11, 24, 0, 0, 0), utc(2026, 11, 24, 9)),
        (utc(2026, 11, 24, 8, 59, 59), utc(2026, 11, 24, 9)),
        (utc(2026, 11, 24, 9, 0, 0), utc(2026, 11, 24, 9)),
    ],
    ids=["19:59:59", "20:00", "23:59:59", "00:00", "08:59:59", "09:00"],
)
@pytest.mark.parametrize("kind", ["survey", "callback"])
def test_quiet_hours_in_utc_when_the_time_zone_is_unknown(now: datetime, send_at: datetime, kind: str) -> None:
    # Given an interaction with no customer time zone, decided at `now`
    event = closed(at=now) if kind == "survey" else unsolved(at=now)
    assert event.customer_timezone is None
    # When the engine decides
    decision = decide(event, now=now)
    # Then the follow-up is kept, moved to the next 09:00 UTC when inside 20:00-09:00
    assert decision.action == kind
    assert decision.send_at == send_at
    deferred = send_at > now
    assert (Reason.QUIET_HOURS_DEFERRED in decision.reasons) is deferred
    assert decision.reasons[0] in (Reason.SURVEY_ELIGIBLE, Reason.CALLBACK_UNRESOLVED)
    if deferred:
        assert decision.reasons[-1] is Reason.QUIET_HOURS_DEFERRED
    quiet = check(decision, "quiet_hours")
    assert quiet.figures["timezone"] == "UTC"
    assert quiet.figures["send_at"] == send_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize(
    ("zone", "now", "send_at"),
    [
        # 20:30 EST on Nov 22 -> 09:00 EST on Nov 23
        ("America/New_York", utc(2026, 11, 23, 1, 30), utc(2026, 11, 23, 14)),
        # 17:00 EST: quiet in UTC (22:00) but not for the customer
        ("America/New_York", utc(2026, 11, 23, 22), utc(2026, 11, 23, 22)),
        # 21:00 JST on Nov 23 -> 09:00 JST on Nov 24
        ("Asia/Tokyo", utc(2026, 11, 23, 12), utc(2026, 11, 24, 0)),
        # 07:00 JST -> 09:00 JST the same day
        ("Asia/Tokyo", utc(2026, 11, 23, 22), utc(2026, 11, 24, 0)),
        # 10:00 JST: quiet in UTC (01:00) but not for the customer
        ("Asia/Tokyo", utc(2026, 11, 24, 1), utc(2026, 11, 24, 1)),
        # 19:59:59 and 20:00 JST
        ("Asia/Tokyo", utc(2026, 11, 23, 10, 59, 59), utc(2026, 11, 23, 10, 59, 59)),
        ("Asia/Tokyo", utc(2026, 11, 23, 11), utc(2026, 11, 24, 0)),
    ],
)
def test_quiet_hours_follow_the_customer_time_zone(zone: str, now: datetime, send_at: datetime) -> None:
    # Given a customer in `zone`
    decision = decide(closed(at=now, customer_timezone=zone), now=now)
    # Then the survey goes out at once in local daytime, else at the next 09:00 local
    assert decision.action is Action.SURVEY
    assert decision.send_at == send_at
    assert (Reason.QUIET_HOURS_DEFERRED in decision.reasons) is (send_at > now)
    if send_at > now:
        assert send_at.astimezone(ZoneInfo(zone)).time() == time(9)
    assert check(decision, "quiet_hours").figures["timezone"] == zone


@pytest.mark.parametrize(
    ("zone", "now", "send_at", "local_day"),
    [
        # Europe/Berlin springs forward on 2026-03-29 at 02:00 CET -> 03:00 CEST
        ("Europe/Berlin", utc(2026, 3, 28, 19, 30), utc(2026, 3, 29, 7), (2026, 3, 29)),  # 20:30 CET
        ("Europe/Berlin", utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 7), (2026, 3, 29)),  # 01:30 CET
        ("Europe/Berlin", utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 7), (2026, 3, 29)),  # 03:30 CEST
        ("Europe/Berlin", utc(2026, 3, 29, 18, 0), utc(2026, 3, 30, 7), (2026, 3, 30)),  # 20:00 CEST
        # Europe/Berlin falls back on 2026-10-25 at 03:00 CEST -> 02:00 CET
        ("Europe/Berlin", utc(2026, 10, 24, 19), utc(2026, 10, 25, 8), (2026, 10, 25)),  # 21:00 CEST
        ("Europe/Berlin", utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 8), (2026, 10, 25)),  # 02:30 CEST
        ("Europe/Berlin", utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 8), (2026, 10, 25)),  # 02:30 CET
        # America/New_York springs forward on 2026-03-08 at 02:00 EST -> 03:00 EDT
        ("America/New_York", utc(2026, 3, 8, 2), utc(2026, 3, 8, 13), (2026, 3, 8)),  # 21:00 EST on the 7th
        ("America/New_York", utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 13), (2026, 3, 8)),  # 01:30 EST
        ("America/New_York", utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 13), (2026, 3, 8)),  # 03:30 EDT
        # America/New_York falls back on 2026-11-01 at 02:00 EDT -> 01:00 EST
        ("America/New_York", utc(2026, 11, 1, 2), utc(2026, 11, 1, 14), (2026, 11, 1)),  # 22:00 EDT on Oct 31
        ("America/New_York", utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 14), (2026, 11, 1)),  # 01:30 EDT
        ("America/New_York", utc(2026, 11, 1, 6, 30), utc(2026, 11, 1, 14), (2026, 11, 1)),  # 01:30 EST
        ("America/New_York", utc(2026, 11, 2, 1), utc(2026, 11, 2, 14), (2026, 11, 2)),  # 20:00 EST
    ],
)
def test_quiet_hours_end_at_09_00_local_wall_time_across_dst_changes(
    zone: str, now: datetime, send_at: datetime, local_day: tuple[int, int, int]
) -> None:
    # Given a customer in `zone` whose interaction closes in the night around a DST change
    decision = decide(closed(at=now, customer_timezone=zone), now=now)
    # Then the survey is deferred to 09:00 local wall time on the right day, as a UTC instant
    assert decision.action is Action.SURVEY
    assert decision.reasons == (Reason.SURVEY_ELIGIBLE, Reason.QUIET_HOURS_DEFERRED)
    assert decision.send_at == send_at
    local = decision.send_at.astimezone(ZoneInfo(zone))
    assert (local.year, local.month, local.day, local.hour, local.minute, local.second) == (*local_day, 9, 0, 0)


def test_windows_slide_over_utc_instants_not_local_calendar_days_across_dst() -> None:
    # Given a Berlin customer surveyed at 09:00 CET on 2026-03-27 (08:00 UTC), deferred from the night
    zone = "Europe/Berlin"
    night = utc(2026, 3, 26, 22)
    ledger = approve(EMPTY, closed(1, night, customer_timezone=zone), night)
    assert ledger.followups[0].send_at == utc(2026, 3, 27, 8)
    # When another survey comes at 09:00 CEST on 2026-04-26: 30 local days later, but 29d23h in UTC
    morning = utc(2026, 4, 26, 7)
    decision = decide(closed(2, morning, customer_timezone=zone), ledger, morning)
    # Then it is refused until 30 days after the first send instant, 10:00 CEST
    assert decision.reasons == (Reason.SURVEY_CAP_REACHED,)
    assert check(decision, "survey_cap_30_days").figures["next_eligible"] == "2026-04-26T08:00:00.000000Z"
    at = utc(2026, 4, 26, 8)
    assert decide(closed(2, at, customer_timezone=zone), ledger, at).action is Action.SURVEY


def test_a_follow_up_deferred_by_quiet_hours_counts_at_its_send_time() -> None:
    # Given a survey decided on 2026-10-01 at 21:00 UTC and deferred to 09:00 UTC the next day
    evening = utc(2026, 10, 1, 21)
    ledger = approve(EMPTY, closed(1, evening), evening)
    assert ledger.followups[0].send_at == utc(2026, 10, 2, 9)
    # When a customer in Tokyo closes an interaction at 14:00 JST on 2026-11-01 (05:00 UTC):
    # more than 30 days after the first decision, less than 30 days after its send time
    at = utc(2026, 11, 1, 5)
    decision = decide(closed(2, at, customer_timezone="Asia/Tokyo"), ledger, at)
    # Then the 30-day cap counts the first survey at its send time and refuses
    assert decision.reasons == (Reason.SURVEY_CAP_REACHED,)
    assert check(decision, "survey_cap_30_days").figures["next_eligible"] == "2026-11-01T09:00:00.000000Z"


def test_a_deferred_follow_up_is_checked_at_its_own_send_time() -> None:
    # Given a survey sent on 2026-10-02 at 09:00 UTC
    ledger = sent((Action.SURVEY, utc(2026, 10, 2, 9)))
    # When a survey is decided on 2026-10-31 at 22:00 UTC (quiet hours), under 30 days after it
    at = utc(2026, 10, 31, 22)
    decision = decide(closed(2, at), ledger, at)
    # Then it is deferred to 2026-11-01 09:00 UTC, exactly 30 days after, so it is allowed
    assert decision.action is Action.SURVEY
    assert decision.send_at == utc(2026, 11, 1, 9)
    assert decision.reasons == (Reason.SURVEY_ELIGIBLE, Reason.QUIET_HOURS_DEFERRED)


def test_a_deferred_callback_keeps_its_trigger_as_the_deciding_reason() -> None:
    # Given an escalated interaction at 03:00 in New York
    at = utc(2026, 11, 23, 8)
    decision = decide(closed(at=at, outcome="escalated", customer_timezone="America/New_York"), now=at)
    # Then the callback is kept and moved to 09:00 New York time
    assert decision.action is Action.CALLBACK
    assert decision.reasons == (Reason.CALLBACK_ESCALATED, Reason.QUIET_HOURS_DEFERRED)
    assert decision.send_at == utc(2026, 11, 23, 14)
    assert check(decision, "quiet_hours").message == (
        "inside quiet hours in America/New_York: send at 2026-11-23T14:00Z"
    )


def test_without_quiet_hours_nothing_is_deferred() -> None:
    # Given a policy without quiet hours
    policy = POLICY.model_copy(update={"quiet_hours": None})
    at = utc(2026, 11, 23, 23)
    # Then a survey at 23:00 UTC goes out at once
    decision = decide(closed(at=at), now=at, policy=policy)
    assert (decision.action, decision.send_at, decision.reasons) == (Action.SURVEY, at, (Reason.SURVEY_ELIGIBLE,))


# --- policy knobs ----------------------------------------------------------------------------------


def test_surveys_are_sampled_deterministically_per_interaction() -> None:
    # Given a policy sampling half of the surveys, an interaction drawing below and one above 0.5
    policy = POLICY.model_copy(update={"survey_sample_rate": 0.5})
    inside, outside = interaction_drawing(0.0, 0.5), interaction_drawing(0.5, 1.0)

    def survey(interaction: str, k: int) -> Decision:
        at = NOW + k * HOUR
        event = closed(event_id=f"evt-{interaction}-{k}", interaction_id=interaction, at=at)
        return decide(event, now=at, policy=policy)

    # When each is decided again and again, by different events at different times
    # Then the one below the rate is always surveyed, the other never, with the draw in the explanation
    for k in range(5):
        assert survey(inside, k).action is Action.SURVEY
        refused = survey(outside, k)
        assert refused.reasons == (Reason.NOT_SAMPLED,)
        assert refused.send_at is None
        sample = check(refused, "survey_sample")
        assert sample.figures == {"draw": round(engine.sample_draw(outside), 6), "rate": 0.5}
        assert sample.figures["draw"] >= 0.5
    # And the draw is a fixed function of the interaction id
    assert engine.sample_draw(outside) == engine.sample_draw(outside)
    assert 0 <= engine.sample_draw(inside) < 0.5 <= engine.sample_draw(outside) < 1


def test_the_sample_rate_is_the_share_of_draws_below_it() -> None:
    # Given a policy whose sample rate is exactly the draw of one interaction
    draw = engine.sample_draw("int-1")
    at_draw = POLICY.model_copy(update={"survey_sample_rate": draw})
    just_above = POLICY.model_copy(update={"survey_sample_rate": min(1.0, draw + 1e-9)})
    # Then that interaction is not sampled (draws in [0, rate) are), and just above the draw it is
    assert decide(closed(1), policy=at_draw).reasons == (Reason.NOT_SAMPLED,)
    assert decide(closed(1), policy=just_above).action is Action.SURVEY


def test_a_zero_sample_rate_surveys_nobody_but_still_calls_back() -> None:
    # Given a policy with surveys sampled at rate 0
    policy = POLICY.model_copy(update={"survey_sample_rate": 0.0})
    # Then a solved interaction is not sampled, an unsolved one still gets its callback
    assert decide(closed(), policy=policy).reasons == (Reason.NOT_SAMPLED,)
    assert decide(unsolved(), policy=policy).action is Action.CALLBACK


def test_an_excluded_segment_is_never_surveyed() -> None:
    # Given a policy excluding the "vip" segment
    policy = Policy(excluded_segments=frozenset({"vip"}))
    # When solved interactions close in the vip segment, another segment and no segment
    vip = decide(closed(segment="vip"), policy=policy)
    # Then the vip one is refused a survey, saying which segment
    assert vip.reasons == (Reason.SEGMENT_EXCLUDED,)
    assert check(vip, "excluded_segments").figures == {"segment": "vip"}
    assert check(vip, "excluded_segments").message == "segment vip is never surveyed"
    # And the others are surveyed
    assert decide(closed(segment="gold"), policy=policy).action is Action.SURVEY
    assert decide(closed(), policy=policy).action is Action.SURVEY
    # And the exclusion is of surveys only: an unsolved vip problem still gets a callback
    assert decide(unsolved(segment="vip"), policy=policy).action is Action.CALLBACK


def test_surveys_disabled_refuses_surveys_but_not_callbacks() -> None:
    # Given a policy with surveys disabled
    policy = Policy(enabled=Enabled(survey=False))
    # Then a solved interaction gets nothing, an unsolved one its callback
    refused = decide(closed(), policy=policy)
    assert refused.reasons == (Reason.SURVEY_DISABLED,)
    assert check(refused, "survey_enabled").message == "surveys are disabled"
    assert decide(unsolved(), policy=policy).action is Action.CALLBACK


def test_callbacks_disabled_gives_an_unsolved_problem_nothing_not_a_survey() -> None:
    # Given a policy with callbacks disabled
    policy = POLICY.model_copy(update={"enabled": Enabled(callback=False)})
    # When an unsolved interaction closes
    refused = decide(unsolved(reopen_count=1), policy=policy)
    # Then nothing, naming the disabled callbacks first and the triggers after
    assert refused.action is Action.NONE
    assert refused.reasons == (Reason.CALLBACK_DISABLED, Reason.CALLBACK_UNRESOLVED, Reason.CALLBACK_REOPENED)
    assert failed(refused) == ["callback_enabled"]
    assert check(refused, "callback_enabled").message == "callbacks are disabled"
    # And a solved interaction still gets its survey
    assert decide(closed(), policy=policy).action is Action.SURVEY


@pytest.mark.parametrize(
    ("handle_seconds", "action"),
    [(0, Action.NONE), (59, Action.NONE), (60, Action.SURVEY), (3600, Action.SURVEY), (None, Action.SURVEY)],
)
def test_a_short_interaction_is_not_surveyed(handle_seconds: int | None, action: Action) -> None:
    # Given a policy needing 60 s of handling for a survey
    policy = POLICY.model_copy(update={"skip": Skip(min_handle_seconds_for_survey=60)})
    # When an interaction handled for `handle_seconds` (unknown when None) closes solved
    decision = decide(closed(handle_seconds=handle_seconds), policy=policy)
    # Then under 60 s it is too short to survey
    assert decision.action is action
    if action is Action.NONE:
        assert decision.reasons == (Reason.SHORT_INTERACTION,)
        assert check(decision, "min_handle_time").figures == {"handle_seconds": handle_seconds, "minimum_seconds": 60}
        assert check(decision, "min_handle_time").message == f"handled in {handle_seconds} s, surveys need 60 s"


def test_a_short_unsolved_interaction_still_gets_its_callback() -> None:
    policy = POLICY.model_copy(update={"skip": Skip(min_handle_seconds_for_survey=60)})
    assert decide(unsolved(handle_seconds=5), policy=policy).action is Action.CALLBACK


def test_custom_caps_apply_to_every_window() -> None:
    # Given a policy allowing 2 callbacks per 24 hours
    policy = POLICY.model_copy(update={"caps": Caps(callback=(Window(max=2, hours=24),))})
    ledger = sent((Action.CALLBACK, NOW - 20 * HOUR))
    # When a second, then a third callback come within the day
    second = engine.decide(unsolved(2), ledger, policy, NOW)
    ledger = ledger.after(second, policy.ledger_retention, NOW)
    third = engine.decide(unsolved(3, NOW + HOUR), ledger, policy, NOW + HOUR)
    # Then the second is accepted and the third refused until the first leaves the 24-hour window
    assert second.action is Action.CALLBACK
    assert third.reasons == (Reason.CALLBACK_CAP_REACHED, Reason.CALLBACK_UNRESOLVED)
    assert check(third, "callback_cap_24_hours").message == (
        "2 callbacks in the last 24 hours, cap 2, next eligible 2026-11-23T16:00Z"
    )


# Explanations must stay true in the corners (found by review; each failed before its fix).


def test_a_stale_event_says_by_how_much_it_is_over_the_limit() -> None:
    decision = decide(closed(closed_at=(NOW - timedelta(hours=72, seconds=1)).isoformat()))
    assert check(decision, "max_event_age").message == "closed 72 h 0 min 1 s ago, limit 72 h"
    assert check(decision, "max_event_age").figures["age_hours"] > 72


def test_a_cap_filled_by_a_follow_up_scheduled_later_counts_it_in_its_message() -> None:
    # Given a survey deferred to tomorrow 09:00 UTC, and a Los Angeles customer deciding tonight
    ledger = ContactLedger("cust-1", 1, (FollowUp(Action.SURVEY, utc(2026, 11, 24, 9), "i-0", "dcn_0"),))
    now = utc(2026, 11, 23, 23)
    event = closed(2, at=now - timedelta(minutes=1), customer_timezone="America/Los_Angeles")
    decision = engine.decide(event, ledger, POLICY, now)
    # Then the refusal counts the later survey instead of claiming the window is empty
    cap = check(decision, "survey_cap_30_days")
    assert (cap.passed, cap.figures["count"]) == (False, 1)
    assert cap.message.startswith("1 survey within one 30-day window with this send time, cap 1")


def test_the_cooldowns_next_eligible_time_clears_later_follow_ups_too() -> None:
    # Given callbacks an hour ago and one scheduled 100 h ahead
    ledger = ContactLedger(
        "cust-1",
        2,
        (
            FollowUp(Action.CALLBACK, NOW - timedelta(hours=1), "i-a", "dcn_a"),
            FollowUp(Action.CALLBACK, NOW + timedelta(hours=100), "i-b", "dcn_b"),
        ),
    )
    decision = engine.decide(closed(3, at=NOW - timedelta(minutes=1)), ledger, POLICY, NOW)
    next_eligible = datetime.fromisoformat(check(decision, "min_gap_before_survey").figures["next_eligible"])
    # Then a survey at that time is accepted (it is 72 h from both)
    later = engine.decide(closed(4, at=next_eligible - timedelta(minutes=1)), ledger, POLICY, next_eligible)
    assert later.action == Action.SURVEY
