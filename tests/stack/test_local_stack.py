"""`governor local` end to end: moto in server mode, resources from the template, SQS pollers and
the HTTP gateway, started on free ports in this process and talked to over HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cli import main as cli_main
from infra.local.stack import LocalGovernor, PortBusy, routes
from shared.domain.decision import decision_id_for
from tests.conftest import detail

pytestmark = pytest.mark.server


def call(stack: LocalGovernor, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        stack.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def fresh(**overrides: Any) -> dict[str, Any]:
    """A detail closed five minutes ago by the wall clock (the stack's default clock)."""
    return detail(closed_at=(datetime.now(UTC) - timedelta(minutes=5)).isoformat(), **overrides)


def logged(stack: LocalGovernor, event_id: str, customer_id: str) -> dict[str, Any] | None:
    from shared.wiring import store

    decision = store().get_decision(decision_id_for(customer_id, event_id))
    return decision.model_dump(mode="json") if decision else None


def test_events_posted_to_the_gateway_are_decided_through_bus_queue_and_poller(stack: LocalGovernor) -> None:
    # Given ten events for three customers, one of them malformed
    items = [fresh(event_id=f"st-e{i}", interaction_id=f"st-i{i}", customer_id=f"st-c{i % 3}") for i in range(9)]
    items.insert(4, fresh(event_id="st-bad", channel="carrier-pigeon"))
    # When they are posted to POST /events and the queue drains
    status, answer = call(stack, "POST", "/events", {"events": items})
    assert stack.wait_drained(timeout=60)
    # Then the good ones are accepted and decided once each, the bad one refused by index and field
    assert status == 202
    assert answer["accepted"] == 9
    assert [(f["index"], f["fields"]) for f in answer["failed"]] == [(4, ["channel"])]
    decisions = [logged(stack, f"st-e{i}", f"st-c{i % 3}") for i in range(9)]
    assert all(d is not None for d in decisions)
    # And each customer has one survey at most still to go out (cap 1 per 30 days): each newer
    # interaction superseded the held survey of the one before
    surveys = [d["customer_id"] for d in decisions if d and d["action"] == "survey" and d["state"] != "cancelled"]
    assert sorted(surveys) == ["st-c0", "st-c1", "st-c2"]
    superseded = [d for d in decisions if d and d["state"] == "cancelled"]
    assert {d["state_reason"] for d in superseded} <= {"SUPERSEDED_BY_NEWER_INTERACTION"}


def test_decide_over_http_answers_the_decision_and_matches_the_queue_path(stack: LocalGovernor) -> None:
    # Given an event decided through the queue
    event = fresh(event_id="st-sync-1", interaction_id="st-sync-i1", customer_id="st-sync-c1", outcome="escalated")
    call(stack, "POST", "/events", event)
    assert stack.wait_drained(timeout=60)
    # When the same event is sent to POST /decide
    status, decision = call(stack, "POST", "/decide", event)
    # Then the answer is the one decision the queue path recorded
    assert status == 200
    assert decision == logged(stack, "st-sync-1", "st-sync-c1")
    assert decision["action"] == "callback"


def test_decide_over_http_refuses_a_bad_body_with_400_naming_the_field(stack: LocalGovernor) -> None:
    status, error = call(stack, "POST", "/decide", fresh(outcome="maybe"))
    assert status == 400
    assert [f["field"] for f in error["fields"]] == ["outcome"]


def test_every_route_in_the_template_is_served_by_the_gateway(stack: LocalGovernor) -> None:
    # Given every route template.yaml declares
    declared = routes()
    assert {(r.method, r.path) for r in declared} >= {("POST", "/events"), ("POST", "/decide")}
    for route in declared:
        # When it is called with an empty JSON object
        path = route.path.replace("{", "").replace("}", "")
        status, body = call(stack, route.method, path, {})
        # Then its function answered (perhaps refusing the input), not the gateway's 404/405 nor a 502
        unrouted = status in (404, 405) and str(body.get("message", "")).startswith(("no route", route.path))
        assert not unrouted and status != 502, (route, status, body)
        assert (isinstance(body, dict) and "code" in body) or status < 300


def test_unknown_routes_and_methods_get_json_404_and_405(stack: LocalGovernor) -> None:
    assert call(stack, "GET", "/nowhere")[0] == 404
    status, body = call(stack, "GET", "/events")
    assert (status, body["code"]) == (405, "METHOD_NOT_ALLOWED")


def test_health_reports_moto_resources_pollers_and_queue_depths(stack: LocalGovernor) -> None:
    status, health = call(stack, "GET", "/health")
    assert status == 200
    assert health["status"] == "ok"
    assert health["moto"]["up"] is True
    assert all(health["resources"].values())
    assert set(health["resources"]) >= {"LedgerTable", "DecisionLogTable", "DecideQueue", "GovernorBus"}
    assert health["pollers"]["DecideQueue"]["alive"] is True
    assert set(health["queues"]) == {
        "DecideQueue",
        "DecideDeadLetterQueue",
        "InteractionClosedRuleDeadLetterQueue",
        "OutcomesQueue",
        "OutcomesDeadLetterQueue",
        "FollowUpOutcomeRuleDeadLetterQueue",
        "ReleaseDeadLetterQueue",
        "LogStreamDeadLetterQueue",
    }
    assert health["pollers"]["DecisionLogTable/stream/LogStreamFunction"]["alive"] is True
    assert health["scheduler"]["failed_runs"] == 0


def test_a_second_stack_on_a_busy_port_says_so(stack: LocalGovernor) -> None:
    with pytest.raises(PortBusy, match=f"port {stack.port}"):
        LocalGovernor(port=stack.port, log_to=None).start()


def test_governor_local_exits_non_zero_when_its_port_is_busy(
    stack: LocalGovernor, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main.main(["local", "--port", str(stack.port), "--no-replay"]) == 2
    assert "busy" in capsys.readouterr().err


def test_replay_sends_a_file_through_the_running_stack_and_summarises(
    stack: LocalGovernor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a file of details and EventBridge entries, with one invalid event
    lines = [
        fresh(event_id="rp-1", interaction_id="rp-i1", customer_id="rp-c1"),
        {
            "Source": "helpdesk",
            "DetailType": "InteractionClosed",
            "Detail": json.dumps(
                fresh(event_id="rp-2", interaction_id="rp-i2", customer_id="rp-c2", outcome="abandoned")
            ),
        },
        fresh(event_id="rp-3", interaction_id="rp-i3", customer_id="rp-c3", sentiment=4),
    ]
    source = tmp_path / "recorded.ndjson"
    source.write_text("\n".join(json.dumps(line) for line in lines))
    # When it is replayed against the running stack
    assert cli_main.main(["replay", str(source), "--url", stack.url]) == 1  # a line was refused
    printed = capsys.readouterr().out
    # Then the summary shows the decisions by action and reason and the invalid event by line and field
    assert "3 events sent, 2 accepted, 1 line(s) refused, 2 decisions" in printed
    assert "SURVEY_ELIGIBLE" in printed and "ABANDONED_INTERACTION" in printed
    assert "suppression rate: 50.0%" in printed
    assert "line 3: sentiment: " in printed
