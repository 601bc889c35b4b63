"""Properties of the engine behind the Governor: random traffic for a few customers over a few
months, then an audit of what was committed against every limit of the default policy.

The audit is brute force over the committed send_at instants, independent of the engine's own
window arithmetic, which is checked separately against a brute-force count.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st

from shared.adapters.clock import FixedClock
from shared.adapters.store import MemoryStore
from shared.domain import engine
from shared.domain.decision import Action, Decision, Reason, State, decision_id_for
from shared.domain.events import InteractionClosed
from shared.domain.policy import QuietHours, default_policy
from shared.usecases.decide import Governor, Outcome
from tests.conftest import detail

POLICY = default_policy()
START = datetime(2026, 1, 5, 8, tzinfo=UTC)
CUSTOMERS = ("c-1", "c-2", "c-3")
ZONES = (None, "UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney")
SENTIMENTS = (None, -1.0, -0.5, -0.49, 0.0, 0.7)
OUTCOMES = ("resolved", "resolved", "unresolved", "escalated", "abandoned")
GAP_DAYS = (0, 0, 0, 1, 2, 4, 7, 10, 14)  # between closings: the same day, days or weeks, plus seconds
MAX_AGE = timedelta(hours=POLICY.skip.max_event_age_hours)
GAP = POLICY.min_gap_before_survey
QUIET = POLICY.quiet_hours or QuietHours()

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Delivery:
    """One delivery of an event to the governor, at `at` (its decision time)."""

    at: datetime
    order: int
    event: InteractionClosed
    redelivery: bool


@st.composite
def traffic(draw: st.DrawFn) -> list[Delivery]:
    """Interactions closing at increasing times with random gaps, each delivered after a small
    delay (sometimes late enough to be stale), some re-closed, some delivered twice."""
    count = draw(st.integers(1, 50))
    customers = CUSTOMERS[: draw(st.integers(1, len(CUSTOMERS)))]
    closed_at = START
    deliveries: list[Delivery] = []
    interactions: dict[str, list[str]] = defaultdict(list)
    for n in range(count):
        gap_days = draw(st.sampled_from(GAP_DAYS))
        closed_at += timedelta(days=gap_days, seconds=draw(st.integers(0, 24 * 3600 - 1)))
        customer = draw(st.sampled_from(customers))
        earlier = interactions[customer]
        if earlier and draw(st.integers(0, 4)) == 0:
            interaction = draw(st.sampled_from(earlier))  # the interaction is re-closed
        else:
            interaction = f"i-{n}"
            earlier.append(interaction)
        fields: dict[str, Any] = {
            "event_id": f"e-{n}",
            "interaction_id": interaction,
            "customer_id": customer,
            "closed_at": closed_at.isoformat(),
            "customer_timezone": draw(st.sampled_from(ZONES)),
        }
        if draw(st.booleans()):  # half the interactions carry random signals, the others are plainly solved
            fields |= {
                "outcome": draw(st.sampled_from(OUTCOMES)),
                "sentiment": draw(st.sampled_from(SENTIMENTS)),
                "contact_attempts": draw(st.sampled_from((None, 1, 2, 3))),
                "reopen_count": draw(st.sampled_from((None, 0, 0, 1))),
            }
        event = InteractionClosed.model_validate(detail(**fields))
        delay = draw(st.one_of(st.integers(0, 600), st.integers(0, 80 * 3600)))
        at = closed_at + timedelta(seconds=delay)
        deliveries.append(Delivery(at, len(deliveries), event, redelivery=False))
        if draw(st.integers(0, 5)) == 0:
            again = at + timedelta(seconds=draw(st.integers(1, 10 * 24 * 3600)))
            deliveries.append(Delivery(again, len(deliveries), event, redelivery=True))
    return sorted(deliveries, key=lambda d: (d.at, d.order))


def run(deliveries: list[Delivery]) -> tuple[MemoryStore, list[tuple[Delivery, Outcome]]]:
    """Each delivery decided by one governor on one in-memory store, at its own time."""
    store = MemoryStore()
    governor = Governor(store)
    outcomes = []
    for delivery in deliveries:
        governor.clock = FixedClock(delivery.at)
        outcomes.append((delivery, governor.decide(delivery.event)))
    return store, outcomes


def most_in_any_window(instants: list[datetime], span: timedelta) -> int:
    """Brute force: the fullest half-open window [t, t + span) starting at any of the instants
    (the fullest window of any start can be slid right to start at an instant it holds)."""
    return max((sum(1 for u in instants if t <= u < t + span) for t in instants), default=0)


def quiet(instant: datetime, zone: str | None) -> bool:
    local = instant.astimezone(ZoneInfo(zone or "UTC")).time()
    return local >= QUIET.start or local < QUIET.end


def unsolved(event: InteractionClosed) -> bool:
    triggers = POLICY.callback_triggers
    return (
        event.outcome in triggers.outcomes
        or (event.sentiment is not None and event.sentiment <= -0.5)
        or (event.contact_attempts is not None and event.contact_attempts >= 3)
        or (event.reopen_count is not None and event.reopen_count >= 1)
    )


def committed_before(outcomes: list[tuple[Delivery, Outcome]]) -> list[tuple[Delivery, Decision, list[Decision]]]:
    """Each first decision with the approvals of its customer committed before it and still
    holding a slot (not superseded, by it or earlier), in decision order."""
    history: dict[str, list[Decision]] = defaultdict(list)
    walked = []
    for delivery, outcome in outcomes:
        if outcome.duplicate:
            continue
        decision = outcome.decision
        gone = set(decision.supersedes)
        history[decision.customer_id] = [d for d in history[decision.customer_id] if d.decision_id not in gone]
        walked.append((delivery, decision, list(history[decision.customer_id])))
        if decision.approved:
            history[decision.customer_id].append(decision)
    return walked


def holding_slots(outcomes: list[tuple[Delivery, Outcome]]) -> list[Decision]:
    """The approvals no later decision superseded: what the ledgers hold (or held) as sent or to send."""
    superseded = {s for _, o in outcomes for s in o.decision.supersedes}
    firsts = [o.decision for _, o in outcomes if not o.duplicate]
    return [d for d in firsts if d.approved and d.decision_id not in superseded]


def utc_instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@PROPERTY_SETTINGS
@given(traffic())
def test_random_traffic_decided_by_the_governor(deliveries: list[Delivery]) -> None:
    """The three properties of decided traffic, checked on the same traffic: generating it costs
    more than deciding it, and each property still sees every example."""
    # Given random traffic of a few customers over a few months
    # When every delivery is decided by the governor at its own time
    store, outcomes = run(deliveries)
    # Then
    committed_follow_ups_respect_every_limit_of_the_default_policy(outcomes)
    every_next_eligible_time_given_fits_the_history_it_was_decided_on(outcomes)
    the_same_event_decided_again_gets_the_same_decision(deliveries, store, outcomes)  # last: decides again


def committed_follow_ups_respect_every_limit_of_the_default_policy(outcomes: list[tuple[Delivery, Outcome]]) -> None:
    walked = committed_before(outcomes)
    for reason in {r for _, decision, _ in walked for r in decision.reasons}:
        note(f"reason {reason}")
    if any(not c.passed and c.rule == "survey_cap_365_days" for _, d, _ in walked for c in d.explanation):
        note("the 365-day survey cap refused one")
    by_customer: dict[str, list[Decision]] = defaultdict(list)
    for decision in holding_slots(outcomes):
        by_customer[decision.customer_id].append(decision)
    for customer, approved in by_customer.items():
        # Then no sliding window of any cap holds more follow-ups than the cap, at any instant
        for kind, windows in ((Action.SURVEY, POLICY.caps.survey), (Action.CALLBACK, POLICY.caps.callback)):
            sends = [d.send_at for d in approved if d.action is kind and d.send_at is not None]
            for window in windows:
                assert most_in_any_window(sends, window.length) <= window.max, (customer, kind, window, sends)
        # And no interaction got two follow-ups of a kind (a surveyed one that came back unsolved
        # may get its one callback)
        interactions = [(d.interaction_id, d.action) for d in approved]
        assert len(interactions) == len(set(interactions)), customer
    for delivery, decision, before in walked:
        event = delivery.event
        if not decision.approved:
            continue
        assert decision.send_at is not None
        # And every survey is at least 72 h from every follow-up of the customer committed before it
        # (a callback may come sooner after a survey: a survey never blocks a needed callback)
        if decision.action is Action.SURVEY:
            assert all(abs(decision.send_at - d.send_at) >= GAP for d in before if d.send_at is not None)
        # And nothing was approved for an abandoned or a stale interaction
        assert event.outcome != "abandoned"
        assert delivery.at - event.closed_at <= MAX_AGE
        # And an unsolved problem got a callback, a solved one a survey
        assert decision.action is (Action.CALLBACK if unsolved(event) else Action.SURVEY)
        # And nothing is sent in the customer's quiet hours, nor before it was decided, nor a
        # survey before the survey delay, or later than its freshness limit
        earliest = delivery.at
        if decision.action is Action.SURVEY:
            earliest = max(delivery.at, event.closed_at + POLICY.survey_delay)
            assert (Reason.SURVEY_DELAYED in decision.reasons) is (earliest > delivery.at)
            assert decision.send_at - event.closed_at <= POLICY.survey_freshness
        assert decision.send_at >= earliest
        assert not quiet(decision.send_at, event.customer_timezone)
        assert (Reason.QUIET_HOURS_DEFERRED in decision.reasons) is (decision.send_at > earliest)
        # And it is held exactly when it is due later
        assert decision.state is (State.PENDING if decision.send_at > delivery.at else State.RELEASED)
    for delivery, decision, _ in walked:
        # And abandoned and stale interactions were refused for that (unless already followed up)
        event = delivery.event
        if event.outcome == "abandoned":
            assert decision.reasons in ((Reason.ALREADY_FOLLOWED_UP,), (Reason.ABANDONED_INTERACTION,))
        elif delivery.at - event.closed_at > MAX_AGE:
            assert decision.reasons in ((Reason.ALREADY_FOLLOWED_UP,), (Reason.STALE_EVENT,))


def every_next_eligible_time_given_fits_the_history_it_was_decided_on(outcomes: list[tuple[Delivery, Outcome]]) -> None:
    # When a follow-up is refused by a cap or the cooldown, naming a next eligible time
    for _, decision, before in committed_before(outcomes):
        for rule in decision.explanation:
            if rule.passed or not rule.figures.get("next_eligible"):
                continue
            next_eligible = utc_instant(rule.figures["next_eligible"])
            assert decision.send_at is None
            assert next_eligible > decision.decided_at
            if rule.rule in {"survey_fatigue", "survey_cooldown_after_response"}:
                continue  # from outcomes, not from the windows: tests/unit/test_lifecycle.py
            # Then at that time the refusing limit has room, measured by brute force on the history
            if rule.rule == "min_gap_before_survey":
                note("cooldown refused one")
                assert all(abs(next_eligible - d.send_at) >= GAP for d in before if d.send_at is not None)
                continue
            kind = Action.SURVEY if rule.rule.startswith("survey_cap") else Action.CALLBACK
            window = next(w for w in POLICY.caps.windows if rule.rule.endswith(w.label.replace(" ", "_")))
            sends = [d.send_at for d in before if d.action is kind and d.send_at is not None]
            assert most_in_any_window([*sends, next_eligible], window.length) <= window.max, (rule, sends)
            # And a second before it the window would still overflow: it is the earliest such time
            earlier = next_eligible - timedelta(seconds=1)
            assert earlier >= utc_instant(
                next(c for c in decision.explanation if c.rule == "quiet_hours").figures["send_at"]
            )
            assert most_in_any_window([*sends, earlier], window.length) > window.max, (rule, sends)


def the_same_event_decided_again_gets_the_same_decision(
    deliveries: list[Delivery], store: MemoryStore, outcomes: list[tuple[Delivery, Outcome]]
) -> None:
    decided = {d.event.event_id: o.decision for d, o in outcomes if not d.redelivery}
    # Then an event delivered twice within the traffic was decided once: the second delivery
    # is a duplicate returning the first decision
    for delivery, outcome in outcomes:
        assert outcome.duplicate is delivery.redelivery
        assert same_decision(outcome.decision, decided[delivery.event.event_id])
    ledgers = dict(store.ledgers)
    # When every event is delivered again a month later, to a fresh governor on the same store
    late = max(d.at for d in deliveries) + timedelta(days=30)
    governor = Governor(store, clock=FixedClock(late))
    for delivery in deliveries:
        again = governor.decide(delivery.event)
        # Then each is a duplicate that returns the first decision unchanged
        assert again.duplicate
        assert same_decision(again.decision, decided[delivery.event.event_id])
        assert again.decision.decision_id == decision_id_for(delivery.event.customer_id, delivery.event.event_id)
    # And no slot was taken again
    assert store.ledgers == ledgers


LIFECYCLE = {"state", "state_reason", "state_changed_at"}


def same_decision(returned: Decision, first: Decision) -> bool:
    """The decision a duplicate returns is the first one as it is now: the same decision, whose
    lifecycle may since have moved on (a newer interaction superseded it)."""
    if returned.state is not first.state:
        assert (returned.state, returned.state_reason) == (State.CANCELLED, "SUPERSEDED_BY_NEWER_INTERACTION")
    return returned.model_dump(exclude=LIFECYCLE) == first.model_dump(exclude=LIFECYCLE)


def instants(hours: list[int]) -> list[datetime]:
    return [START + timedelta(hours=h) for h in hours]


def brute_load(taken: list[int], span: int, at: int) -> int:
    """The most of `taken` in any window [s, s + span) that also holds `at`, over every whole-hour
    start (all inputs are whole hours, so the count only changes at whole hours)."""
    return max(sum(1 for t in taken if s <= t < s + span) for s in range(at - span + 1, at + 1))


@PROPERTY_SETTINGS
@given(
    taken=st.lists(st.integers(0, 60), max_size=10),
    span=st.integers(1, 24),
    cap=st.integers(0, 4),
    at=st.integers(0, 60),
)
def test_window_load_and_next_allowed_agree_with_a_brute_force_count(
    taken: list[int], span: int, cap: int, at: int
) -> None:
    # Given follow-ups at whole hours, a window of `span` hours with cap `cap`, and a candidate time
    length = timedelta(hours=span)
    # When the engine measures the load of the windows holding the candidate
    load = engine.window_load(instants(taken), length, instants([at])[0])
    # Then it is the brute-force count of the fullest such window
    assert load == brute_load(taken, span, at)
    # And when the follow-ups already respect the cap, adding the candidate keeps every window of any
    # start within the cap exactly when that load is under the cap
    if fullest(taken, span) <= cap:
        assert (fullest([*taken, at], span) <= cap) is (load < cap)
    # And next_allowed is the first whole hour at or after the candidate where one more fits
    found = engine.next_allowed(instants(taken), length, cap, instants([at])[0])
    horizon = max([at, *taken]) + span + 1
    expected = next((h for h in range(at, horizon + 1) if brute_load(taken, span, h) < cap), None)
    assert found == (instants([expected])[0] if expected is not None else None)


def fullest(points: list[int], span: int) -> int:
    """The fullest window [s, s + span) over every whole-hour start."""
    return max((sum(1 for t in points if s <= t < s + span) for s in range(-span, 62)), default=0)


@PROPERTY_SETTINGS
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20))
def test_the_sample_draw_is_a_fixed_number_in_the_unit_interval(interaction_id: str) -> None:
    draw = engine.sample_draw(interaction_id)
    assert 0 <= draw < 1
    assert engine.sample_draw(interaction_id) == draw
