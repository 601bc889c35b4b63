"""Marketing ops' policy API through its handler with API Gateway events, on moto."""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.lambda_runtime import LambdaContext, api_gateway_event
from shared import wiring
from shared.adapters.clock import FixedClock
from shared.domain import engine
from shared.domain.contacts import ContactLedger
from shared.domain.decision import Decision, format_utc
from shared.domain.events import InteractionClosed
from shared.domain.policy import STORED, Policy
from tests.conftest import NOW, detail, drain_stream


@pytest.fixture(autouse=True)
def policy_environment(aws: Any) -> None:
    for function in ("PolicyApiFunction", "DecideFunction"):
        os.environ.update(aws.environment(function))
    wiring.reset()
    wiring.use_clock(FixedClock(NOW))


def call(
    method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    from functions.policy_api.app import handler

    route, _, query = path.partition("?")
    resource = "/policy/versions/{version}" if route.startswith("/policy/versions/") else route
    params = {"version": route.rsplit("/", 1)[1]} if resource.endswith("{version}") else None
    event = api_gateway_event(
        method,
        route,
        resource=resource,
        path_parameters=params,
        query=urllib.parse.parse_qs(query),
        headers=headers or {},
        body=json.dumps(body) if body is not None else None,
    )
    answer = handler(event, LambdaContext("policy-api"))
    response_headers = {k: v[0] for k, v in (answer.get("multiValueHeaders") or {}).items()}
    response_headers.update(answer.get("headers") or {})
    return answer["statusCode"], response_headers, json.loads(answer["body"])


def apply(policy: dict[str, Any], based_on: int, comment: str = "change") -> tuple[int, dict[str, str], Any]:
    return call("PUT", "/policy", {"policy": policy, "comment": comment}, {"If-Match": f'"{based_on}"'})


def test_the_current_policy_starts_as_the_builtin_default_with_its_etag() -> None:
    status, headers, body = call("GET", "/policy")
    assert (status, headers["ETag"], body["version"], body["kind"]) == (200, '"0"', 0, "builtin")
    assert body["policy"]["caps"]["survey"][0] == {"max": 1, "days": 30, "hours": None}


def test_a_change_becomes_a_new_version_with_author_comment_and_diff() -> None:
    # When marketing ops halve the survey sample rate, based on version 0
    status, headers, body = call(
        "PUT",
        "/policy",
        {"policy": {"survey_sample_rate": 0.5}, "comment": "fewer surveys"},
        {"If-Match": '"0"', "X-Governor-Author": "maria"},
    )
    # Then version 1 is current, with who, why and what changed
    assert (status, headers["ETag"]) == (200, '"1"')
    assert (body["version"], body["author"], body["comment"], body["based_on"]) == (1, "maria", "fewer surveys", 0)
    assert body["diff"] == [{"path": "survey_sample_rate", "before": 1.0, "after": 0.5}]
    assert call("GET", "/policy")[2]["version"] == 1
    # And the old version is still there, unchanged
    assert call("GET", "/policy/versions/0")[2]["policy"]["survey_sample_rate"] == 1.0


def test_a_change_based_on_a_stale_version_is_refused_with_412_and_changes_nothing() -> None:
    # Given two editors who both read version 0, and the first applied her change
    assert apply({"survey_sample_rate": 0.5}, based_on=0)[0] == 200
    # When the second applies his, still based on version 0
    status, _, body = apply({"min_gap_hours_before_survey": 96}, based_on=0)
    # Then it is refused with 412, saying which version is current, and version 1 stays current
    assert (status, body["code"]) == (412, "VERSION_CONFLICT")
    assert "version 1 is current" in body["message"]
    current = call("GET", "/policy")[2]
    assert (current["version"], current["policy"]["min_gap_hours_before_survey"]) == (1, 72)


def test_the_412_holds_even_when_both_editors_pass_the_read_check() -> None:
    # Given an editor who read version 0 and is about to commit, while another commits first
    from shared.domain.policy import Policy

    store = wiring.policy_store()
    store.save(Policy(survey_sample_rate=0.5), based_on=0, author="first", comment="first")
    # When the slower one's transaction runs with the same based_on (its own read check long passed)
    from shared.adapters.policy_store import PolicyStore
    from shared.domain.errors import VersionConflict

    class SlowReader(PolicyStore):
        def current(self) -> Any:  # what this editor saw before the other committed
            from shared.adapters.policy_store import builtin

            return builtin()

    with pytest.raises(VersionConflict):
        SlowReader(store.table).save(Policy(survey_sample_rate=0.1), based_on=0, author="second", comment="second")
    # Then the conditional write refused it: version 1 stays current, no version 2 exists
    assert call("GET", "/policy")[2]["policy"]["survey_sample_rate"] == 0.5
    assert call("GET", "/policy/versions/2")[0] == 404


def test_a_change_without_if_match_is_refused_with_428() -> None:
    status, _, body = call("PUT", "/policy", {"policy": {}, "comment": "x"})
    assert (status, body["code"]) == (428, "PRECONDITION_REQUIRED")


def test_a_bad_policy_is_refused_with_every_problem_by_path_and_changes_nothing() -> None:
    bad = {
        "caps": {"survey": [{"max": 1, "days": 0}]},
        "survey_sample_rate": 1.5,
        "quiet_hours": {"start": "25:00", "end": "09:00"},
        "colour": "blue",
        "overrides": [{"scope": {}, "rules": {"survey_sample_rate": 0.1}}, {"scope": {"channel": "fax"}, "rules": {}}],
    }
    status, _, body = apply(bad, based_on=0)
    assert (status, body["code"]) == (400, "INVALID_INPUT")
    paths = {f["field"] for f in body["fields"]}
    assert paths >= {
        "policy.caps.survey.0.days",
        "policy.survey_sample_rate",
        "policy.quiet_hours.start",
        "policy.colour",
        "policy.overrides.0.scope",
        "policy.overrides.1.scope.channel",
    }
    assert call("GET", "/policy")[2]["version"] == 0


def test_an_override_that_can_never_apply_is_refused() -> None:
    twice = {
        "overrides": [
            {"scope": {"segment": "vip"}, "rules": {"survey_sample_rate": 0.1}},
            {"scope": {"segment": "vip"}, "rules": {"survey_sample_rate": 0.2}},
        ]
    }
    status, _, body = call("POST", "/policy/validate", {"policy": twice})
    assert (status, body["valid"]) == (200, False)
    assert "can never apply" in body["problems"][0]["message"]


def test_validate_reports_a_good_policy_with_its_diff_against_the_current_one() -> None:
    status, _, body = call("POST", "/policy/validate", {"policy": {"caps": {"callback": [{"max": 2, "days": 7}]}}})
    assert (status, body["valid"], body["problems"]) == (200, True, [])
    assert body["diff"] == [
        {
            "path": "caps.callback",
            "before": [{"max": 1, "days": 7, "hours": None}],
            "after": [{"max": 2, "days": 7, "hours": None}],
        }
    ]


def test_history_lists_versions_newest_first_and_pages_with_a_token() -> None:
    for n in range(3):
        apply({"survey_sample_rate": 0.9 - n / 10}, based_on=n, comment=f"step {n + 1}")
    status, _, first = call("GET", "/policy/versions?limit=2")
    assert status == 200
    assert [v["version"] for v in first["items"]] == [3, 2]
    _, _, second = call("GET", f"/policy/versions?limit=2&next_token={urllib.parse.quote(first['next_token'])}")
    assert [v["version"] for v in second["items"]] == [1, 0]
    assert second["next_token"] is None
    assert call("GET", "/policy/versions?next_token=garbage")[0] == 400


def test_rollback_makes_an_old_version_current_again_as_a_new_version() -> None:
    apply({"survey_sample_rate": 0.5}, based_on=0)
    apply({"survey_sample_rate": 0.2}, based_on=1)
    # When marketing ops roll back to version 1
    status, headers, body = call(
        "POST", "/policy/rollback", {"version": 1, "comment": "0.2 was too low"}, {"If-Match": '"2"'}
    )
    # Then version 3 is current, holding version 1's rules, and history keeps all of it
    assert (status, headers["ETag"], body["version"], body["kind"]) == (200, '"3"', 3, "rollback")
    assert body["policy"]["survey_sample_rate"] == 0.5
    assert [v["version"] for v in call("GET", "/policy/versions")[2]["items"]] == [3, 2, 1, 0]
    # And a rollback based on a stale version is refused like any change
    assert call("POST", "/policy/rollback", {"version": 0}, {"If-Match": '"2"'})[0] == 412
    assert call("POST", "/policy/rollback", {"version": 9}, {"If-Match": '"3"'})[0] == 404


def test_the_decide_function_picks_up_a_new_version_within_its_cache_ttl() -> None:
    # Given a decider that read the current policy (version 0) just now
    ticks = {"now": 1000.0}
    cached = wiring.current_policy()
    cached.monotonic = lambda: ticks["now"]
    governor = wiring.governor()
    first = governor.decide(
        InteractionClosed.model_validate(detail(event_id="e-1", interaction_id="i-1", customer_id="c-1"))
    )
    assert first.decision.policy_version == 0
    # When marketing ops switch surveys off
    apply({"enabled": {"survey": False, "callback": True}}, based_on=0)
    # Then within the TTL deciders still use version 0, and after it version 1, without a deploy
    ticks["now"] += cached.ttl - 1
    before = governor.decide(
        InteractionClosed.model_validate(detail(event_id="e-2", interaction_id="i-2", customer_id="c-2"))
    )
    ticks["now"] += 2
    after = governor.decide(
        InteractionClosed.model_validate(detail(event_id="e-3", interaction_id="i-3", customer_id="c-3"))
    )
    assert (before.decision.policy_version, before.decision.action) == (0, "survey")
    assert (after.decision.policy_version, after.decision.reasons[0]) == (1, "SURVEY_DISABLED")
    assert cached.ttl <= 60


def test_a_simulation_counts_match_a_hand_computed_case(aws: Any) -> None:
    # Given a month of logged decisions, made live under the default policy:
    #   cust-a: solved on day 0 and day 35 -> survey, survey (35 days apart, cap 1 per 30 days)
    #   cust-b: unresolved on day 1       -> callback
    #   cust-c: solved on day 3, abandoned on day 20 -> survey, none (ABANDONED_INTERACTION)
    start = NOW - timedelta(days=40)
    history = [
        ("a1", "cust-a", 0, "resolved"),
        ("b1", "cust-b", 1, "unresolved"),
        ("c1", "cust-c", 3, "resolved"),
        ("c2", "cust-c", 20, "abandoned"),
        ("a2", "cust-a", 35, "resolved"),
    ]
    for name, customer, day, outcome in history:
        closed = start + timedelta(days=day)
        wiring.use_clock(FixedClock(closed + timedelta(minutes=1)))
        wiring.governor().decide(
            InteractionClosed.model_validate(
                detail(
                    event_id=f"e-{name}",
                    interaction_id=f"i-{name}",
                    customer_id=customer,
                    outcome=outcome,
                    closed_at=closed.isoformat(),
                )
            )
        )
    drain_stream(aws)  # the log stream function lists the decisions on their days' pages
    wiring.use_clock(FixedClock(NOW))
    # When a candidate allowing 1 survey per 60 days is simulated over the last 45 days
    candidate = {"caps": {"survey": [{"max": 1, "days": 60}]}}
    status, _, report = call("POST", "/policy/simulate", {"policy": candidate, "days": 45})
    # Then the counts are the hand-computed ones: cust-a's second survey becomes none
    assert status == 200
    assert report["events"] == 5
    assert report["current"]["by_action"] == {"survey": 3, "callback": 1, "none": 1}
    assert report["candidate"]["by_action"] == {"survey": 2, "callback": 1, "none": 2}
    assert report["difference"]["by_action"] == {"callback": 0, "none": 1, "survey": -1}
    assert report["difference"]["by_reason"]["SURVEY_CAP_REACHED"] == 1
    assert report["changed_events"] == 1
    assert report["changed_customers_sample"] == [
        {
            "customer_id": "cust-a",
            "events": [
                {
                    "event_id": "e-a2",
                    "closed_at": (start + timedelta(days=35)).isoformat(),
                    "current": {"action": "survey", "reason": "SURVEY_ELIGIBLE"},
                    "candidate": {"action": "none", "reason": "SURVEY_CAP_REACHED"},
                }
            ],
        }
    ]
    # And nothing real changed: still version 0, still five logged decisions
    assert call("GET", "/policy")[2]["version"] == 0


def test_a_simulation_of_a_bad_policy_is_refused_by_path() -> None:
    status, _, body = call("POST", "/policy/simulate", {"policy": {"survey_sample_rate": -1}, "days": 30})
    assert (status, [f["field"] for f in body["fields"]]) == (400, ["policy.survey_sample_rate"])
    status, _, body = call("POST", "/policy/simulate", {"policy": {}, "days": 400})
    assert status == 400


# -- policies mean what they say (issue 10, items 6a to 9) --------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "policy.md"
VIP_FEWER_SURVEYS = {
    "caps": {"callback": [{"max": 3, "days": 7}]},
    "quiet_hours": {"start": "20:00", "end": "10:00"},
    "overrides": [
        {
            "scope": {"segment": "vip"},
            "rules": {"caps": {"survey": [{"max": 1, "days": 90}]}, "quiet_hours": {"start": "21:00"}},
            "description": "fewer surveys for vips, a later start of quiet hours",
        }
    ],
}


def documented_policies() -> list[dict[str, Any]]:
    """Every JSON policy example of docs/policy.md."""
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", DOCS.read_text(), re.DOTALL)]


def decide_at(
    at: datetime, n: int, customer: str, closed_ago: timedelta = timedelta(minutes=1), **fields: Any
) -> Decision:
    """One interaction closed `closed_ago` (a minute) before `at`, decided at `at` by the decide
    function's path. (A survey waits 2 h after the close by default: `closed_ago` 3 h sends now.)"""
    wiring.use_clock(FixedClock(at))
    event = InteractionClosed.model_validate(
        detail(
            event_id=f"e-{customer}-{n}",
            interaction_id=f"i-{customer}-{n}",
            customer_id=customer,
            closed_at=(at - closed_ago).isoformat(),
            **fields,
        )
    )
    return wiring.governor().decide(event).decision


def probes(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Interactions of every scope the document names (and none), solved and not, by day and by night."""
    scopes = [{}, *(o["scope"] for o in document.get("overrides", []))]
    return [
        {**scope, "outcome": outcome, "hour": hour}
        for scope in scopes
        for outcome in ("resolved", "unresolved")
        for hour in (12, 20, 21)
    ]


def test_the_docs_hold_the_examples_this_suite_applies() -> None:
    assert VIP_FEWER_SURVEYS in documented_policies()
    assert any(len(d.get("overrides", [])) >= 3 for d in documented_policies())


@pytest.mark.parametrize("document", documented_policies(), ids=lambda d: f"{len(d.get('overrides', []))}-overrides")
def test_every_documented_policy_applies_and_then_decides_as_validated(document: dict[str, Any]) -> None:
    # Given a policy example of docs/policy.md, as validate and simulate read it
    validated = Policy.model_validate(document)
    # When it is applied through PUT /policy
    status, _, body = apply(document, based_on=0, comment="from the docs")
    # Then it is stored exactly as validated
    assert status == 200, body
    assert body["policy"] == validated.document()
    assert call("GET", "/policy")[2]["policy"] == validated.document()
    # And the deciders, reading the stored version, decide every scope as the validated policy does
    for n, probe in enumerate(probes(document)):
        fields = {k: v for k, v in probe.items() if k not in ("hour",)}
        at = NOW.replace(hour=probe["hour"])
        customer = f"c-{n}"
        decision = decide_at(at, n, customer, **fields)
        event = InteractionClosed.model_validate(
            decision.input.model_dump()
            | {"event_id": decision.event_id, "interaction_id": decision.interaction_id, "customer_id": customer}
        )
        expected = engine.decide(event, ContactLedger(customer), validated.model_copy(update={"version": 1}), at)
        assert decision.model_dump() == expected.model_dump(), probe


def test_an_applied_override_keeps_the_base_rules_it_does_not_change() -> None:
    # Given a base with 3 callbacks per 7 days and quiet hours 20:00-10:00, and a vip override that
    # changes only the survey cap and the start of quiet hours, applied through the API
    status, _, body = apply(VIP_FEWER_SURVEYS, based_on=0)
    assert status == 200, body
    # Then the stored override says only what it changed
    assert call("GET", "/policy")[2]["policy"]["overrides"][0]["rules"] == {
        "caps": {"survey": [{"max": 1, "days": 90}]},
        "quiet_hours": {"start": "21:00:00"},
    }
    # When a vip customer has two unsolved interactions two days apart
    first = decide_at(NOW - timedelta(days=2), 1, "vip-1", outcome="unresolved", segment="vip")
    second = decide_at(NOW, 2, "vip-1", outcome="unresolved", segment="vip")
    # Then both get a callback: the base's cap of 3 per 7 days applies to vips too
    assert (first.action, second.action, second.policy_scope) == ("callback", "callback", "segment=vip")
    # And a vip interaction decided at 09:30 UTC waits for the base's 10:00 end of quiet hours
    early = decide_at(NOW.replace(hour=9, minute=30), 3, "vip-2", timedelta(hours=3), segment="vip")
    assert (early.action, early.send_at) == ("survey", NOW.replace(hour=10, minute=0))
    assert "QUIET_HOURS_DEFERRED" in early.reasons


def test_simulating_the_applied_policy_finds_nothing_to_change(aws: Any) -> None:
    # Given a week of logged decisions of vip customers under the default policy
    for day in (6, 4, 2):
        decide_at(NOW - timedelta(days=day), day, "vip-1", outcome="unresolved", segment="vip")
    decide_at(NOW.replace(hour=9, minute=30) - timedelta(days=1), 1, "vip-2", segment="vip")
    decide_at(NOW - timedelta(days=1), 9, "vip-3", segment="vip", channel="chat")
    drain_stream(aws)  # the log stream function lists the decisions on their days' pages
    wiring.use_clock(FixedClock(NOW))
    # And marketing ops simulate a policy, then apply it
    _, _, before = call("POST", "/policy/simulate", {"policy": VIP_FEWER_SURVEYS, "days": 10})
    assert apply(VIP_FEWER_SURVEYS, based_on=0)[0] == 200
    # When they simulate the same document against what is now current
    status, _, after = call("POST", "/policy/simulate", {"policy": VIP_FEWER_SURVEYS, "days": 10})
    # Then nothing would change: what apply stored decides as the simulated candidate did
    assert status == 200
    assert (after["events"], after["changed_events"]) == (5, 0)
    assert set(after["difference"]["by_action"].values()) == {0}
    assert after["current"]["by_action"] == after["candidate"]["by_action"] == before["candidate"]["by_action"]
    assert after["current"]["by_action"]["callback"] == 3  # the base's 3 per 7 days, kept by the override


def contact_state_of(aws: Any, customer: str, query: str = "") -> tuple[int, Any]:
    from functions.admin_api.app import handler

    os.environ.update(aws.environment("AdminApiFunction"))
    event = api_gateway_event(
        "GET",
        f"/customers/{customer}/contact-state",
        resource="/customers/{customer_id}/contact-state",
        path_parameters={"customer_id": customer},
        query=urllib.parse.parse_qs(query),
    )
    answer = handler(event, LambdaContext("admin-api"))
    return answer["statusCode"], json.loads(answer["body"])


def test_contact_state_follows_the_override_that_applies_to_the_customer(aws: Any) -> None:
    # Given vip customers may get one survey per 90 days, and a vip customer surveyed now
    assert (
        apply(
            {"overrides": [{"scope": {"segment": "vip"}, "rules": {"caps": {"survey": [{"max": 1, "days": 90}]}}}]}, 0
        )[0]
        == 200
    )
    surveyed = decide_at(NOW, 1, "vip-1", timedelta(hours=3), segment="vip")
    assert (surveyed.action, surveyed.send_at) == ("survey", NOW)
    # When an admin looks at the customer's contact state a day later
    wiring.use_clock(FixedClock(NOW + timedelta(days=1)))
    status, state = contact_state_of(aws, "vip-1")
    # Then it is computed for the customer's latest interaction (a vip): next survey 90 days on
    allowed = NOW + timedelta(days=90)
    assert status == 200, state
    assert (state["scope"]["segment"], state["scope"]["from"], state["policy_scope"]) == (
        "vip",
        "latest_decision",
        "segment=vip",
    )
    assert state["next_survey_allowed"] == format_utc(allowed)
    # And a vip interaction decided at exactly that time gets its survey
    assert decide_at(allowed, 2, "vip-1", segment="vip").action == "survey"
    # And asked about another segment, the base rules answer (30 days), saying so
    wiring.use_clock(FixedClock(NOW + timedelta(days=1)))
    status, state = contact_state_of(aws, "vip-1", "segment=gold")
    assert (status, state["policy_scope"], state["scope"]["from"]) == (200, "default", "query")
    assert state["next_survey_allowed"] == format_utc(NOW + timedelta(days=30))
    # And a channel that does not exist is refused by name
    status, body = contact_state_of(aws, "vip-1", "channel=fax")
    assert (status, [f["field"] for f in body["fields"]]) == (400, ["query.channel"])


def test_caps_that_could_overgrow_a_ledger_are_refused_by_path_and_change_nothing() -> None:
    uncapped = {"caps": {"survey": [], "callback": []}}
    status, _, body = apply(uncapped, based_on=0)
    assert (status, body["code"]) == (400, "INVALID_INPUT")
    assert {f["field"] for f in body["fields"]} == {"policy.caps.survey", "policy.caps.callback"}
    assert "not capped" in body["fields"][0]["message"]
    daily = {"overrides": [{"scope": {"brand": "acme"}, "rules": {"caps": {"callback": [{"max": 5, "days": 1}]}}}]}
    status, _, report = call("POST", "/policy/validate", {"policy": daily})
    assert (status, report["valid"]) == (200, False)
    assert [p["field"] for p in report["problems"]] == ["policy.overrides.0.rules.caps"]
    assert call("GET", "/policy")[2]["version"] == 0


def test_a_version_stored_before_the_ledger_bound_still_decides_but_is_not_rolled_back_to(aws: Any) -> None:
    # Given an uncapped version stored before validation bounded the ledger, current
    from shared.adapters import policy_store

    old = Policy.model_validate({"caps": {"survey": [], "callback": []}, "version": 1}, context=STORED)
    stored = policy_store.StoredPolicy(1, old, "maria", NOW - timedelta(days=30), "no caps")
    for sort_key in (policy_store._version_key(1), policy_store.CURRENT):
        boto3.client("dynamodb").put_item(TableName=aws.names["PolicyTable"], Item=policy_store._item(stored, sort_key))
    # Then it still reads and decides (deciders are never stopped by it)
    assert call("GET", "/policy")[2]["version"] == 1
    assert decide_at(NOW, 1, "c-1", outcome="unresolved").action == "callback"
    # And a rollback to it is refused with the same problems, by path, changing nothing
    apply({"survey_sample_rate": 0.5}, based_on=1)
    status, _, body = call("POST", "/policy/rollback", {"version": 1, "comment": "back"}, {"If-Match": '"2"'})
    assert (status, body["code"]) == (400, "INVALID_INPUT")
    assert {f["field"] for f in body["fields"]} == {"policy.caps.survey", "policy.caps.callback"}
    assert call("GET", "/policy")[2]["version"] == 2
