"""Policy documents: scoped overrides, the cross-kind cap, refusals by path, documents that
round-trip, overrides merged rule by rule, the ledger bound, and contact state under overrides."""

from __future__ import annotations

import itertools
import json
from datetime import time, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from shared.domain import engine
from shared.domain.contact_state import contact_state
from shared.domain.contacts import MAX_FOLLOWUPS, ContactLedger, FollowUp
from shared.domain.decision import Action
from shared.domain.events import InteractionClosed
from shared.domain.policy import STORED, Policy, Rules, default_policy, ledger_load
from tests.conftest import NOW, detail

VIP_AND_ACME = {
    "overrides": [
        {"scope": {"segment": "vip"}, "rules": {"survey_sample_rate": 0.0}},
        {"scope": {"segment": "vip", "brand": "acme"}, "rules": {"caps": {"survey": [{"max": 2, "days": 30}]}}},
        {"scope": {"channel": "chat"}, "rules": {"enabled": {"survey": False}}},
    ]
}


def event(n: int = 1, **overrides: Any) -> InteractionClosed:
    return InteractionClosed.model_validate(detail(event_id=f"e-{n}", interaction_id=f"i-{n}", **overrides))


def test_the_most_specific_matching_override_applies_and_the_decision_names_its_scope() -> None:
    policy = Policy.model_validate(VIP_AND_ACME)
    # A vip of brand acme: the two-key scope wins over the segment-only one (which would not sample)
    decision = engine.decide(event(segment="vip", brand="acme"), ContactLedger("cust-1"), policy, NOW)
    assert (decision.action, decision.policy_scope) == ("survey", "segment=vip,brand=acme")
    # A vip of another brand: the segment scope applies
    decision = engine.decide(event(segment="vip", brand="other"), ContactLedger("cust-1"), policy, NOW)
    assert (decision.reasons[0], decision.policy_scope) == ("NOT_SAMPLED", "segment=vip")
    # Nobody matched: the base policy
    decision = engine.decide(event(), ContactLedger("cust-1"), policy, NOW)
    assert (decision.action, decision.policy_scope) == ("survey", "default")


def test_equally_specific_overrides_apply_in_the_order_listed() -> None:
    policy = Policy.model_validate(VIP_AND_ACME)
    decision = engine.decide(event(segment="vip", channel="chat"), ContactLedger("cust-1"), policy, NOW)
    assert decision.policy_scope == "segment=vip"


def test_an_override_merges_into_the_base_rule_by_rule() -> None:
    policy = Policy.model_validate(VIP_AND_ACME)
    rules, _ = policy.for_event(event(segment="vip", brand="acme"))
    assert [w.max for w in rules.caps.survey] == [2]
    assert rules.caps.callback == default_policy().caps.callback  # untouched by the override
    assert rules.survey_sample_rate == 1.0


def test_a_cross_kind_cap_counts_follow_ups_of_any_kind() -> None:
    # Given a policy allowing 1 follow-up of any kind per 14 days, and a callback 3 days ago
    policy = Policy.model_validate({"caps": {"any": [{"max": 1, "days": 14}]}, "min_gap_hours_before_survey": 0})
    first = engine.decide(
        event(1, outcome="unresolved", closed_at=(NOW - timedelta(days=3, minutes=1)).isoformat()),
        ContactLedger("cust-1"),
        policy,
        NOW - timedelta(days=3),
    )
    ledger = ContactLedger("cust-1").after(first, policy.ledger_retention, NOW - timedelta(days=3))
    # When a solved interaction closes now
    decision = engine.decide(event(2), ledger, policy, NOW)
    # Then no survey: the cross-kind cap is full
    assert (decision.action, decision.reasons[0]) == ("none", "CONTACT_CAP_REACHED")


def test_the_ledger_keeps_what_the_longest_override_window_can_count() -> None:
    policy = Policy.model_validate(
        {"overrides": [{"scope": {"brand": "acme"}, "rules": {"caps": {"survey": [{"max": 1, "days": 730}]}}}]}
    )
    assert policy.ledger_retention == timedelta(days=730)


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"caps": {"survey": [{"max": 1, "days": 0}]}}, ("caps", "survey", 0, "days")),
        ({"caps": {"survey": [{"max": 1}]}}, ("caps", "survey", 0)),
        ({"survey_sample_rate": 1.5}, ("survey_sample_rate",)),
        ({"quiet_hours": {"start": "25:00"}}, ("quiet_hours", "start")),
        ({"quiet_hours": {"default_timezone": "Mars/Base"}}, ("quiet_hours", "default_timezone")),
        ({"colour": "blue"}, ("colour",)),
        ({"overrides": [{"scope": {}, "rules": {"survey_sample_rate": 0.5}}]}, ("overrides", 0, "scope")),
        (
            {"overrides": [{"scope": {"channel": "fax"}, "rules": {"survey_sample_rate": 0.5}}]},
            ("overrides", 0, "scope", "channel"),
        ),
        (
            {"overrides": [{"scope": {"segment": "vip"}, "rules": {"survey_sample_rate": 3}}]},
            ("overrides", 0, "rules", "survey_sample_rate"),
        ),
    ],
)
def test_a_bad_policy_is_refused_at_the_path_of_the_problem(document: dict[str, Any], path: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as refused:
        Policy.model_validate(document)
    assert path in [e["loc"] for e in refused.value.errors()]


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (
            {
                "overrides": [
                    {"scope": {"segment": "vip"}, "rules": {"survey_sample_rate": 0.1}},
                    {"scope": {"segment": "vip"}, "rules": {"survey_sample_rate": 0.2}},
                ]
            },
            "can never apply",
        ),
        ({"overrides": [{"scope": {"segment": "vip"}, "rules": {}}]}, "changes no rule"),
        (
            {
                "excluded_segments": ["staff"],
                "overrides": [{"scope": {"segment": "staff"}, "rules": {"survey_sample_rate": 0.5}}],
            },
            "never surveyed",
        ),
    ],
)
def test_an_override_that_can_never_take_effect_is_refused(document: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        Policy.model_validate(document)


# -- documents round-trip, overrides merge into the base rule by rule (issue 10, items 7 and 8) ----

SEGMENTS, BRANDS, CHANNELS = ("vip", "staff", "gold"), ("acme", "zen"), ("phone", "chat")
OUTCOMES = ("resolved", "unresolved", "escalated", "abandoned")
window = st.one_of(
    st.builds(lambda m, d: {"max": m, "days": d}, st.integers(0, 3), st.integers(7, 400)),
    st.builds(lambda m, h: {"max": m, "hours": h}, st.integers(0, 2), st.integers(24 * 7, 24 * 30)),
)
windows = st.lists(window, min_size=1, max_size=2)
clock = st.builds(time, st.integers(0, 23), st.sampled_from([0, 30])).map(lambda t: t.isoformat(timespec="minutes"))
rules_documents = st.fixed_dictionaries(
    {},
    optional={
        "caps": st.fixed_dictionaries({}, optional={"survey": windows, "callback": windows, "any": windows}),
        "min_gap_hours_before_survey": st.integers(0, 240),
        "callback_triggers": st.fixed_dictionaries(
            {},
            optional={
                "outcomes": st.lists(st.sampled_from(OUTCOMES), unique=True),
                "sentiment_at_or_below": st.none() | st.sampled_from([-1.0, -0.5, 0.25]),
                "contact_attempts_at_least": st.none() | st.integers(1, 5),
                "reopen_count_at_least": st.none() | st.integers(1, 3),
            },
        ),
        "skip": st.fixed_dictionaries(
            {},
            optional={
                "outcomes": st.lists(st.sampled_from(OUTCOMES), unique=True),
                "max_event_age_hours": st.integers(1, 720),
                "min_handle_seconds_for_survey": st.integers(0, 600),
            },
        ),
        "survey_sample_rate": st.sampled_from([0.0, 0.25, 0.5, 1.0]),
        "quiet_hours": st.none()
        | st.fixed_dictionaries(
            {}, optional={"start": clock, "end": clock, "default_timezone": st.sampled_from(["UTC", "Europe/Paris"])}
        ),
        "enabled": st.fixed_dictionaries({}, optional={"survey": st.booleans(), "callback": st.booleans()}),
    },
)
scopes = st.fixed_dictionaries(
    {},
    optional={
        "segment": st.sampled_from(SEGMENTS),
        "brand": st.sampled_from(BRANDS),
        "channel": st.sampled_from(CHANNELS),
    },
).filter(bool)
overrides = st.lists(
    st.fixed_dictionaries(
        {"scope": scopes, "rules": rules_documents.filter(bool)}, optional={"description": st.text(max_size=10)}
    ),
    max_size=4,
    unique_by=lambda o: json.dumps(o["scope"], sort_keys=True),
)
policy_documents = st.builds(
    lambda base, excluded, found: {**base, "excluded_segments": excluded, "overrides": found},
    rules_documents,
    st.lists(st.sampled_from(SEGMENTS), unique=True, max_size=1),
    overrides,
)
EVERY_SCOPE = list(itertools.product((None, *SEGMENTS), (None, *BRANDS), (None, *CHANNELS)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(policy_documents)
def test_a_policy_document_round_trips_and_each_override_changes_only_what_it_names(document: dict[str, Any]) -> None:
    try:
        policy = Policy.model_validate(document)
    except ValidationError:
        reject()  # e.g. an override that only changes survey rules of an excluded segment
    # When the policy is written as the store writes it, then read back
    written = policy.document()
    again = Policy.model_validate(json.loads(json.dumps(written)))
    # Then it reads back as the same policy: the same document, the same rules for every scope
    assert again.document() == written
    assert all(again.rules_for(*scope) == policy.rules_for(*scope) for scope in EVERY_SCOPE)
    # And each override's rules are the base's, except what the override names (field by field)
    for given_override, override in zip(document["overrides"], policy.overrides, strict=True):
        effective, label = again.rules_for(**given_override["scope"])
        assert label == override.scope.label
        for name in Rules.model_fields:
            base_value, value = getattr(policy, name), getattr(effective, name)
            if name not in given_override["rules"]:
                assert value == base_value, name
            elif isinstance(base_value, BaseModel) and isinstance(given_override["rules"][name], dict):
                named = given_override["rules"][name]
                for field in type(base_value).model_fields:
                    source = getattr(override.rules, name) if field in named else base_value
                    assert getattr(value, field) == getattr(source, field), f"{name}.{field}"
            else:
                assert value == getattr(override.rules, name), name


def test_a_partial_override_keeps_the_base_rules_it_does_not_name_once_stored() -> None:
    # Given a base with callback cap 3 per 7 days and quiet hours 20:00-10:00, and a vip override
    # that changes only the survey cap and the start of quiet hours
    policy = Policy.model_validate(
        {
            "caps": {"callback": [{"max": 3, "days": 7}]},
            "quiet_hours": {"start": "20:00", "end": "10:00"},
            "overrides": [
                {
                    "scope": {"segment": "vip"},
                    "rules": {"caps": {"survey": [{"max": 1, "days": 90}]}, "quiet_hours": {"start": "21:00"}},
                }
            ],
        }
    )
    # When it is stored and read back (the store keeps `document()`)
    stored = Policy.model_validate(json.loads(json.dumps(policy.document())))
    # Then the override reads as written, and vip customers keep the base's other rules
    assert stored.document()["overrides"][0]["rules"] == {
        "caps": {"survey": [{"max": 1, "days": 90}]},
        "quiet_hours": {"start": "21:00:00"},
    }
    vip, scope = stored.rules_for(segment="vip")
    assert scope == "segment=vip"
    assert [(w.max, w.days) for w in vip.caps.callback] == [(3, 7)]
    assert [(w.max, w.days) for w in vip.caps.survey] == [(1, 90)]
    assert vip.quiet_hours is not None and (vip.quiet_hours.start, vip.quiet_hours.end) == (time(21), time(10))


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"overrides": [{"scope": {"segment": "vip"}, "rules": {"caps": None}}]}, ("overrides", 0, "rules", "caps")),
        (
            {"overrides": [{"scope": {"segment": "vip"}, "rules": {"min_gap_hours_before_survey": None}}]},
            ("overrides", 0, "rules", "min_gap_hours_before_survey"),
        ),
        (
            {"overrides": [{"scope": {"segment": None}, "rules": {"survey_sample_rate": 0.5}}]},
            ("overrides", 0, "scope"),
        ),
    ],
)
def test_a_null_that_would_break_the_merge_is_refused_at_its_path(
    document: dict[str, Any], path: tuple[Any, ...]
) -> None:
    with pytest.raises(ValidationError) as refused:
        Policy.model_validate(document)
    assert path in [e["loc"] for e in refused.value.errors()]


def test_an_override_can_switch_quiet_hours_off_with_null() -> None:
    policy = Policy.model_validate({"overrides": [{"scope": {"channel": "chat"}, "rules": {"quiet_hours": None}}]})
    assert policy.rules_for(channel="chat")[0].quiet_hours is None
    assert Policy.model_validate(policy.document()).rules_for(channel="chat")[0].quiet_hours is None


# -- the ledger bound (issue 10, item 6a) ------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "path", "words"),
    [
        ({"caps": {"survey": [], "callback": []}}, ("caps", "survey"), "not capped"),
        ({"caps": {"survey": [], "callback": []}}, ("caps", "callback"), "not capped"),
        ({"caps": {"callback": [{"max": 2, "days": 1}]}}, ("caps",), f"at most {MAX_FOLLOWUPS} fit"),
        ({"caps": {"survey": [{"max": 1, "hours": 1}]}}, ("caps",), "follow-ups"),
        (
            {"overrides": [{"scope": {"brand": "acme"}, "rules": {"caps": {"callback": []}}}]},
            ("overrides", 0, "rules", "caps", "callback"),
            "not capped",
        ),
        (
            {"overrides": [{"scope": {"brand": "acme"}, "rules": {"caps": {"callback": [{"max": 5, "days": 1}]}}}]},
            ("overrides", 0, "rules", "caps"),
            "lower a cap",
        ),
    ],
)
def test_caps_that_could_overgrow_a_customers_ledger_are_refused_at_their_path(
    document: dict[str, Any], path: tuple[Any, ...], words: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        Policy.model_validate(document)
    messages = {e["loc"]: e["msg"] for e in refused.value.errors()}
    assert path in messages and words in messages[path], messages


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"caps": {"survey": [], "callback": [], "any": [{"max": 1, "days": 1}]}},  # a cross-kind cap bounds both
        {"caps": {"survey": []}, "enabled": {"survey": False}},  # a disabled kind needs no cap
        {"caps": {"callback": [{"max": 1, "days": 1}]}},  # 369 callbacks + 8 surveys a year still fit
    ],
)
def test_caps_that_bound_the_ledger_are_accepted(document: dict[str, Any]) -> None:
    Policy.model_validate(document)


def test_a_version_stored_before_the_bound_still_reads_for_deciders() -> None:
    uncapped = {"caps": {"survey": [], "callback": []}}
    with pytest.raises(ValidationError):
        Policy.model_validate(uncapped)
    assert Policy.model_validate(uncapped, context=STORED).caps.survey == ()


def test_the_bound_holds_for_the_densest_traffic_the_caps_allow() -> None:
    # Given a policy at the edge of the bound: one callback a day, surveys off
    policy = Policy.model_validate(
        {"caps": {"callback": [{"max": 1, "days": 1}]}, "enabled": {"survey": False}, "quiet_hours": None}
    )
    # When an unsolved interaction closes every day for two years, each decided at once
    ledger, most = ContactLedger("cust-1"), 0
    for n in range(2 * 366):
        at = NOW + timedelta(days=n)
        closed = event(n, outcome="unresolved", closed_at=(at - timedelta(minutes=1)).isoformat())
        decision = engine.decide(closed, ledger, policy, at)
        if decision.approved:
            ledger = ledger.after(decision, policy.ledger_retention, at)
        most = max(most, len(ledger.followups))
    # Then the ledger never holds more than the bound validation computed from the caps
    assert 366 <= most <= ledger_load(policy, policy.ledger_retention)["total"] <= MAX_FOLLOWUPS


def test_a_ledger_at_the_bound_drops_its_oldest_follow_up_to_take_a_new_one() -> None:
    # Given a ledger already at the bound (grown under a policy stored before it was validated)
    start = NOW - timedelta(days=300)
    full = ContactLedger(
        "cust-1",
        7,
        tuple(
            FollowUp(Action.CALLBACK, start + timedelta(hours=n), f"i-old-{n}", f"dcn_old{n}")
            for n in range(MAX_FOLLOWUPS + 5)
        ),
    )
    uncapped = Policy.model_validate({"caps": {"survey": [], "callback": []}}, context=STORED)
    decision = engine.decide(event(1, outcome="unresolved"), full, uncapped, NOW)
    # When the approval is added
    after = full.after(decision, uncapped.ledger_retention, NOW)
    # Then the ledger keeps the bound: the new follow-up and the newest others, the oldest dropped
    assert len(after.followups) == MAX_FOLLOWUPS
    assert after.followups[-1].decision_id == decision.decision_id
    assert min(f.send_at for f in after.followups) == start + timedelta(hours=6)
    assert after.version == 8


def test_a_ledger_at_the_bound_drops_what_no_cap_counts_before_any_counted_follow_up() -> None:
    # Given a ledger at the bound under the default policy (at most 4 surveys in 365 days): three
    # surveys sent 300, 200 and 100 days ago, and older-to-newer failed deliveries filling the rest
    # (they take no slot, so the policy's bound does not count them)
    policy = default_policy()
    counted = tuple(
        FollowUp(Action.SURVEY, NOW - timedelta(days=d), f"i-ok-{d}", f"dcn_ok{d}") for d in (300, 200, 100)
    )
    failed = tuple(
        FollowUp(
            Action.SURVEY, NOW - timedelta(days=299, hours=-n), f"i-failed-{n}", f"dcn_failed{n}", delivery_failed=True
        )
        for n in range(MAX_FOLLOWUPS - len(counted))
    )
    ledger = ContactLedger("cust-1", 3, counted + failed)
    # When two more surveys are approved, 30 days apart (each takes the 4th slot of its year, then none is left)
    decisions = []
    now = NOW
    for n in range(2):
        decision = engine.decide(event(n, customer_id="cust-1"), ledger, policy, now)
        decisions.append(decision.action)
        ledger = ledger.after(decision, policy.ledger_retention, now) if decision.send_at else ledger
        now += timedelta(days=30)
    # Then the second is refused by the cap: the counted surveys were kept, the failed deliveries dropped
    assert decisions == [Action.SURVEY, Action.NONE]
    assert {f.decision_id for f in counted} <= {f.decision_id for f in ledger.followups}
    assert len(ledger.followups) == MAX_FOLLOWUPS


# -- contact state under overrides (issue 10, item 9) ------------------------------------------

VIP_SURVEYS_QUARTERLY = {
    "overrides": [{"scope": {"segment": "vip"}, "rules": {"caps": {"survey": [{"max": 1, "days": 90}]}}}]
}


def test_contact_state_uses_the_override_of_the_scope_it_is_asked_about() -> None:
    # Given vip customers may get one survey per 90 days, and a vip customer surveyed now
    policy = Policy.model_validate(VIP_SURVEYS_QUARTERLY)
    first = engine.decide(event(1, segment="vip"), ContactLedger("cust-1"), policy, NOW)
    assert first.action == "survey" and first.send_at is not None
    # (held by the survey delay, then released at its send time)
    ledger = ContactLedger("cust-1").after(first, policy.ledger_retention, NOW).released(first.decision_id)
    # When an admin asks for the customer's state as a vip
    state = contact_state(ledger, policy, NOW + timedelta(days=1), {"segment": "vip", "from": "query"})
    # Then the next survey is 90 days on, under the override's window, and the scope is named
    allowed = first.send_at + timedelta(days=90)
    assert state["next_survey_allowed"] == allowed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert (state["policy_scope"], [w["window"] for w in state["windows"] if w["kind"] == "survey"]) == (
        "segment=vip",
        ["90 days"],
    )
    # And a vip interaction decided at exactly that time gets its survey; a second earlier, not
    late = event(2, segment="vip", closed_at=(allowed - timedelta(hours=3)).isoformat())
    assert engine.decide(late, ledger, policy, allowed).action == "survey"
    assert engine.decide(late, ledger, policy, allowed - timedelta(seconds=1)).reasons[0] == "SURVEY_CAP_REACHED"
    # And the base policy (no scope) still says 30 days
    base = contact_state(ledger, policy, NOW + timedelta(days=1))
    assert (base["policy_scope"], base["next_survey_allowed"]) == (
        "default",
        (first.send_at + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    )


def test_contact_state_says_never_for_a_kind_the_scope_switches_off() -> None:
    policy = Policy.model_validate(
        {"overrides": [{"scope": {"channel": "chat"}, "rules": {"enabled": {"survey": False}}}]}
    )
    state = contact_state(ContactLedger("cust-1"), policy, NOW, {"channel": "chat", "from": "query"})
    assert (state["next_survey_allowed"], state["policy_scope"]) == (None, "channel=chat")
    assert state["next_callback_allowed"] is not None
