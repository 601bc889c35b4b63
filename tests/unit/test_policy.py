"""Policy documents: scoped overrides, the cross-kind cap, and refusals by path."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from shared.domain import engine
from shared.domain.contacts import ContactLedger
from shared.domain.events import InteractionClosed
from shared.domain.policy import Policy, default_policy
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
