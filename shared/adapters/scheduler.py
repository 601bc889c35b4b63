"""EventBridge Scheduler: one one-time schedule per pending follow-up, firing the release function
at its send time. This module alone spells schedule names and their input.

Creating is idempotent (a name per decision: a second create answers ConflictException, which
means "already scheduled"), so announcing a pending decision again (a retried batch of the log
stream) never makes a second schedule. Deleting is best effort: the release re-check cancels a
follow-up whose schedule could not be deleted, so a stray firing has no effect.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from shared.adapters import aws

PREFIX = "fu-"
# How often, and for how long, Scheduler retries a failed release invocation before the DLQ.
RETRY_ATTEMPTS = 10
RETRY_MAX_AGE_SECONDS = 86400


def schedule_name(decision_id: str) -> str:
    return f"{PREFIX}{decision_id}"


def at_expression(moment: datetime) -> str:
    """Scheduler's one-time expression, UTC, whole seconds rounded up (never fires early)."""
    utc = moment.astimezone(UTC)
    if utc.microsecond:
        utc = utc.replace(microsecond=0) + timedelta(seconds=1)
    return f"at({utc:%Y-%m-%dT%H:%M:%S})"


def release_input(decision_id: str) -> str:
    return json.dumps({"decision_id": decision_id})


@dataclass(frozen=True)
class Target:
    """Where a schedule fires: the release function, invoked with the scheduler role, and the
    queue that keeps what still failed after the retries."""

    function_arn: str
    role_arn: str
    dead_letter_arn: str


class Scheduler(aws.AwsPort):
    service = "scheduler"

    def __init__(self, group: str, target: Target, client: Any = None) -> None:
        self.group = group
        self.target = target
        super().__init__(client)

    def ensure(self, decision_id: str, send_at: datetime, now: datetime) -> bool:
        """Makes sure the release of `decision_id` is scheduled; True if this call created it.

        A send time already past (a stream batch retried late, a slow publish) is scheduled for now: the
        release re-check then decides as of the real moment."""
        try:
            self.client.create_schedule(
                Name=schedule_name(decision_id),
                GroupName=self.group,
                ScheduleExpression=at_expression(max(send_at, now)),
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE",
                State="ENABLED",
                Target={
                    "Arn": self.target.function_arn,
                    "RoleArn": self.target.role_arn,
                    "Input": release_input(decision_id),
                    "DeadLetterConfig": {"Arn": self.target.dead_letter_arn},
                    "RetryPolicy": {
                        "MaximumRetryAttempts": RETRY_ATTEMPTS,
                        "MaximumEventAgeInSeconds": RETRY_MAX_AGE_SECONDS,
                    },
                },
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConflictException":
                return False  # scheduled by an earlier attempt: the same name, the same release
            raise
        return True

    def delete(self, decision_id: str) -> None:
        """Removes the schedule of a cancelled follow-up; one already gone (fired, deleted) is fine."""
        try:
            self.client.delete_schedule(Name=schedule_name(decision_id), GroupName=self.group)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
