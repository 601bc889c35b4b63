"""The local Scheduler (infra/local/schedules.py) on moto: due one-time schedules fire in time order
as of their own time, a later one waits, a failing one is retried and then dead-lettered with its
Input, as EventBridge Scheduler's RetryPolicy and DeadLetterConfig say."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from infra.local.schedules import ScheduleRunner
from shared.adapters.clock import EventClock

T = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ARN = "arn:aws:lambda:us-east-1:123456789012:function:recorder"


@dataclass
class Recorder:
    """A function target: records each invocation's input and the time the clock read then."""

    clock: EventClock
    fail: bool = False
    logical_id: str = "Recorder"
    timeout: float = 3.0

    def __post_init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], datetime]] = []

    def load(self) -> Callable[[dict[str, Any], Any], Any]:
        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            self.calls.append((event, self.clock.now()))
            if self.fail:
                raise RuntimeError("release failed")
            return {"changed": True, "state": "released"}

        return handler


def schedule(aws: Any, name: str, at: datetime, retries: int = 3) -> None:
    boto3.client("scheduler").create_schedule(
        Name=name,
        GroupName=aws.names["ReleaseScheduleGroup"],
        ScheduleExpression=f"at({at:%Y-%m-%dT%H:%M:%S})",
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target={
            "Arn": ARN,
            "RoleArn": "arn:aws:iam::123456789012:role/scheduler",
            "Input": json.dumps({"decision_id": name}),
            "DeadLetterConfig": {"Arn": aws.arns["ReleaseDeadLetterQueue"]},
            "RetryPolicy": {"MaximumRetryAttempts": retries, "MaximumEventAgeInSeconds": 3600},
        },
    )


def runner(target: Recorder, clock: EventClock) -> ScheduleRunner:
    return ScheduleRunner(boto3.client("scheduler"), boto3.client("sqs"), {ARN: target}, as_of=clock.as_of)


def names(aws: Any) -> set[str]:
    return {s["Name"] for s in boto3.client("scheduler").list_schedules()["Schedules"]}


def test_due_schedules_fire_in_time_order_as_of_their_time_and_are_deleted(aws: Any) -> None:
    # Given three schedules, created out of order, one of them after the time reached
    clock = EventClock()
    target = Recorder(clock)
    schedule(aws, "fu-late", T + timedelta(hours=3))
    schedule(aws, "fu-second", T + timedelta(hours=2))
    schedule(aws, "fu-first", T + timedelta(hours=1))
    # When the runner reaches T + 2 h
    fired = runner(target, clock).run_due(T + timedelta(hours=2))
    # Then the two due ones ran, earliest first, each reading its own time as "now", and are gone
    assert [call[0]["decision_id"] for call in target.calls] == ["fu-first", "fu-second"]
    assert [call[1] for call in target.calls] == [T + timedelta(hours=1), T + timedelta(hours=2)]
    assert [f.answer for f in fired] == [{"changed": True, "state": "released"}] * 2
    assert names(aws) == {"fu-late"}


def test_the_event_clock_fires_due_schedules_before_what_happens_later(aws: Any) -> None:
    # Given a schedule at T + 1 h and an event clock wired to the runner, as the local stack does
    target = Recorder(EventClock())
    local = runner(target, target.clock)
    clock = EventClock(before=local.run_due)
    local.as_of = clock.as_of
    target.clock = clock
    schedule(aws, "fu-one", T + timedelta(hours=1))
    # When something that happened at T is processed, then something at T + 2 h
    clock.happened(T)
    assert target.calls == []
    clock.happened(T + timedelta(hours=2))
    # Then the schedule ran before the second, as of its own time
    assert target.calls == [({"decision_id": "fu-one"}, T + timedelta(hours=1))]


def test_a_failing_release_is_retried_then_dead_lettered_with_its_input(aws: Any) -> None:
    # Given a schedule whose function fails, with one retry allowed
    clock = EventClock()
    target = Recorder(clock, fail=True)
    schedule(aws, "fu-broken", T, retries=1)
    local = runner(target, clock)
    # When it falls due, then the next pass retries it
    assert local.run_due(T) == []
    assert names(aws) == {"fu-broken"}  # kept for the retry
    fired = local.run_due(T)
    # Then after the retry failed too its Input is in the release dead-letter queue and it is gone
    assert len(target.calls) == 2 and [f.answer for f in fired] == [None]
    assert names(aws) == set()
    sqs = boto3.client("sqs")
    [message] = sqs.receive_message(QueueUrl=aws.urls["ReleaseDeadLetterQueue"])["Messages"]
    assert json.loads(message["Body"]) == {"decision_id": "fu-broken"}
    assert (local.failures, local.dead_lettered) == (2, 1)
