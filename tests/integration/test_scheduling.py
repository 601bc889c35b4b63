"""Issue 11: a pending decision is announced only once its release is scheduled (one EventBridge
Scheduler schedule per decision, as template.yaml's group, role, DLQ and retry policy say), and a
follow-up a newer decision superseded is announced as cancelled, its schedule deleted. The log
stream function announces whatever was committed this way, from the queue or POST /decide alike
(issue 12: the decision log's stream is the outbox).

moto stores schedules (it never fires them: tests/integration/test_release.py fires the release
function as a schedule would). Faults are injected on the product's own cached clients.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.lambda_runtime import LambdaContext, api_gateway_event
from shared import wiring
from shared.adapters import aws as aws_clients
from shared.adapters.clock import FixedClock
from shared.adapters.scheduler import at_expression, schedule_name
from shared.domain.decision import State
from tests.conftest import NOW, detail, drain, drain_stream, log_items, put_events
from tests.integration.test_release import SEND_AT, commit, decision, fire, logged


@pytest.fixture(autouse=True)
def environment(aws: Any) -> Iterator[None]:
    for function in ("DecideApiFunction", "LogStreamFunction", "ReleaseFunction"):
        os.environ.update(aws.environment(function))
    wiring.reset()
    wiring.use_clock(FixedClock(NOW))
    yield


def schedules(stack: Any) -> dict[str, dict[str, Any]]:
    client = boto3.client("scheduler")
    group = stack.names["ReleaseScheduleGroup"]
    names = [s["Name"] for s in client.list_schedules(GroupName=group)["Schedules"]]
    return {name: client.get_schedule(Name=name, GroupName=group) for name in names}


def kinds(read: Any) -> list[tuple[str, str]]:
    return [(e["detail-type"], e["detail"]["decision_id"]) for e in read()]


def refuse_schedules() -> dict[str, bool]:
    """Scheduler throttling every CreateSchedule of the product until switched off."""
    refusing = {"on": True}

    def refuse(**_: Any) -> None:
        if refusing["on"]:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "CreateSchedule")

    aws_clients.client("scheduler").meta.events.register("before-call.scheduler.CreateSchedule", refuse)
    return refusing


def test_a_committed_pending_decision_gets_its_schedule_from_the_log_stream(aws: Any, outbound: Any) -> None:
    # Given a survey held until its send time, committed (all a decider does)
    held = decision("evt-held")
    commit(held)
    assert schedules(aws) == {}
    # When the log stream function handles its log record
    answers = drain_stream(aws)
    # Then its release is scheduled, exactly as the template says a release is
    assert answers == [{"batchItemFailures": []}] * 2
    (schedule,) = schedules(aws).values()
    assert schedule["Name"] == schedule_name(held.decision_id)
    assert schedule["ScheduleExpression"] == at_expression(SEND_AT) == "at(2026-11-23T14:00:00)"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["ActionAfterCompletion"] == "DELETE"
    target = schedule["Target"]
    assert target["Arn"] == aws.get_att("ReleaseFunction", "Arn")
    assert target["RoleArn"] == aws.get_att("SchedulerRole", "Arn")
    assert target["DeadLetterConfig"] == {"Arn": aws.arns["ReleaseDeadLetterQueue"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert json.loads(target["Input"]) == {"decision_id": held.decision_id}
    # And it is announced as scheduled, once
    assert kinds(outbound) == [("FollowUpScheduled", held.decision_id)]
    assert drain_stream(aws) == []
    assert outbound() == []


def test_a_decision_whose_schedule_could_not_be_made_stays_unannounced_until_it_is(aws: Any, outbound: Any) -> None:
    # Given Scheduler refusing to create schedules when the log stream function meets a held survey
    held = decision("evt-held")
    commit(held)
    refusing = refuse_schedules()
    # Then it is not announced (nobody would release it): its record is reported for a retry;
    # counting, the stream's other reader, does not wait for publishing
    answer, counting = drain_stream(aws)
    assert len(answer["batchItemFailures"]) == 1
    assert outbound() == []
    assert counting == {"batchItemFailures": []}
    assert wiring.stats().days(NOW.date(), NOW.date())[0]["total"] == 1
    # When Scheduler is back, the retry schedules and announces it, and it stays counted once
    refusing["on"] = False
    assert drain_stream(aws) == [{"batchItemFailures": []}]
    assert list(schedules(aws)) == [schedule_name(held.decision_id)]
    assert kinds(outbound) == [("FollowUpScheduled", held.decision_id)]
    assert wiring.stats().days(NOW.date(), NOW.date())[0]["total"] == 1


def test_a_superseding_commit_announces_the_cancellation_and_drops_the_schedule_from_the_log_stream(
    aws: Any, outbound: Any
) -> None:
    # Given a held survey, scheduled and announced
    held = decision("evt-held")
    commit(held)
    outbound()
    assert list(schedules(aws)) == [schedule_name(held.decision_id)]
    # And a newer interaction's decision that superseded it, committed (the held one's entry cancelled in
    # the same transaction)
    newer = decision("evt-newer", decided_at=NOW + timedelta(minutes=10), supersedes=(held.decision_id,))
    commit(newer, NOW + timedelta(minutes=10))
    # When the log stream function handles their records (the newer one's INSERT, the held one's MODIFY)
    assert drain_stream(aws) == [{"batchItemFailures": []}] * 2
    # Then the newer one is scheduled and the held one's cancellation is announced, its schedule gone
    published = outbound()
    assert {(e["detail-type"], e["detail"]["decision_id"], e["detail"]["state"]) for e in published} == {
        ("FollowUpScheduled", newer.decision_id, "pending"),
        ("FollowUpCancelled", held.decision_id, "cancelled"),
    }
    cancellation = next(e["detail"] for e in published if e["detail-type"] == "FollowUpCancelled")
    assert cancellation["state_reason"] == "SUPERSEDED_BY_NEWER_INTERACTION"
    assert list(schedules(aws)) == [schedule_name(newer.decision_id)]


# ---- through the decide paths, with the engine -----------------------------------------------


def via_post_decide(event: dict[str, Any]) -> dict[str, Any]:
    from functions.decide_api.app import handler

    answer = handler(api_gateway_event("POST", "/decide", body=json.dumps(event)), LambdaContext("decide-api"))
    assert answer["statusCode"] == 200, answer
    return json.loads(answer["body"])  # type: ignore[no-any-return]


def test_a_survey_decided_on_the_queue_is_held_scheduled_then_released_by_its_schedule(aws: Any, outbound: Any) -> None:
    # Given an interaction that just closed, resolved: a survey, held by the survey delay
    put_events(aws, [detail(event_id="evt-q", interaction_id="int-q", closed_at=NOW.isoformat())])
    assert drain(aws) == [{"batchItemFailures": []}]
    (made,) = log_items(aws)
    assert (made["action"], made["state"]) == ("survey", "pending")
    # Then its release is scheduled for its send time and it is announced as scheduled
    (schedule,) = schedules(aws).values()
    send_at = datetime.fromisoformat(made["send_at"])
    assert schedule["ScheduleExpression"] == at_expression(send_at)
    assert kinds(outbound) == [("FollowUpScheduled", made["decision_id"])]
    # When the schedule fires at that time
    fire(made["decision_id"], send_at)
    # Then it is released and announced as approved
    assert logged(made["decision_id"]).state is State.RELEASED
    assert kinds(outbound) == [("FollowUpApproved", made["decision_id"])]


def test_a_newer_interaction_decided_by_post_decide_supersedes_the_held_survey(aws: Any, outbound: Any) -> None:
    # Given a survey held after an interaction that closed at NOW
    first = via_post_decide(detail(event_id="evt-1", interaction_id="int-1", closed_at=NOW.isoformat()))
    assert first["state"] == "pending"
    outbound()
    # When the customer is back 40 minutes later, still stuck, and that is decided synchronously
    later = NOW + timedelta(minutes=40)
    wiring.use_clock(FixedClock(later + timedelta(seconds=30)))
    second = via_post_decide(
        detail(event_id="evt-2", interaction_id="int-2", closed_at=later.isoformat(), outcome="unresolved")
    )
    # Then the newer decision supersedes the held survey in its own commit
    assert second["supersedes"] == [first["decision_id"]]
    cancelled = logged(first["decision_id"])
    assert (cancelled.state, str(cancelled.state_reason)) == (State.CANCELLED, "SUPERSEDED_BY_NEWER_INTERACTION")
    # And the survey's cancellation is announced with the new decision, its schedule deleted
    assert ("FollowUpCancelled", first["decision_id"]) in kinds(outbound)
    assert schedule_name(first["decision_id"]) not in schedules(aws)
    # And when the deleted schedule fires anyway, nothing changes
    assert fire(first["decision_id"], datetime.fromisoformat(first["send_at"]))["changed"] is False


def test_a_newer_interaction_on_the_queue_supersedes_a_held_survey_and_gets_the_freed_slot(
    aws: Any, outbound: Any
) -> None:
    # Given a survey held after an interaction that closed at NOW
    put_events(aws, [detail(event_id="evt-1", interaction_id="int-1", closed_at=NOW.isoformat())])
    drain(aws)
    (held,) = log_items(aws)
    outbound()
    # When the customer's next interaction, an hour later and resolved too, comes through the queue
    later = NOW + timedelta(hours=1)
    wiring.use_clock(FixedClock(later))
    put_events(aws, [detail(event_id="evt-2", interaction_id="int-2", closed_at=later.isoformat())])
    assert drain(aws) == [{"batchItemFailures": []}]
    # Then the newer interaction's survey replaces the held one: the survey cap (one) is not in its way
    newer = next(d for d in log_items(aws) if d["event_id"] == "evt-2")
    assert (newer["action"], newer["state"], newer["supersedes"]) == ("survey", "pending", [held["decision_id"]])
    assert logged(held["decision_id"]).state is State.CANCELLED
    assert set(kinds(outbound)) == {
        ("FollowUpScheduled", newer["decision_id"]),
        ("FollowUpCancelled", held["decision_id"]),
    }
    assert list(schedules(aws)) == [schedule_name(newer["decision_id"])]
