"""Marketing ops' policy API through its handler with API Gateway events, on moto."""

from __future__ import annotations

import json
import os
import urllib.parse
from datetime import timedelta
from typing import Any

import pytest

from infra.lambda_runtime import LambdaContext, api_gateway_event
from shared import wiring
from shared.adapters.clock import FixedClock
from shared.domain.events import InteractionClosed
from tests.conftest import NOW, detail


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


def test_a_simulation_counts_match_a_hand_computed_case() -> None:
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
