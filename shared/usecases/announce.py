"""Announcing a decision as its log entry changes: what "publishing" means once decisions have a
lifecycle. The log stream function (shared.usecases.log_stream) announces each decision the log
stream carries, in the state that record shows:

- a pending decision (its INSERT): its release is scheduled (one-time schedule, idempotent), then
  FollowUpScheduled is published. The schedule comes first: a pending follow-up nobody will
  release must never be announced as done, so a failed schedule leaves the decision unannounced
  for the stream's retry;
- a follow-up cancelled because a newer interaction superseded it (its MODIFY): its schedule is
  deleted (best effort: the release re-check would cancel it anyway), then FollowUpCancelled;
- otherwise the event of the decision's state (FollowUpSuppressed, FollowUpApproved for a release
  at once or at its send time, FollowUpCancelled for a release re-check that cancelled it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from aws_lambda_powertools import Logger

from shared.adapters.aws import AWS_ERRORS, retryable
from shared.adapters.clock import Clock, EventClock, WallClock
from shared.domain.decision import CancelReason, Decision, State

logger = Logger(child=True)


class Scheduling(Protocol):
    def ensure(self, decision_id: str, send_at: datetime, now: datetime) -> bool: ...

    def delete(self, decision_id: str) -> None: ...


class EventPublishing(Protocol):
    def publish(self, decisions: Sequence[Decision]) -> list[Decision]: ...


@dataclass
class Announcer:
    publisher: EventPublishing
    scheduler: Scheduling
    clock: Clock = field(default_factory=WallClock)

    def publish(self, decisions: Sequence[Decision]) -> list[Decision]:
        """Announces `decisions`; returns those not announced (to retry), the very objects passed
        in, so a caller can tell apart two records of one decision. AWS errors that a retry cannot
        fix propagate (they are bugs)."""
        failed: set[int] = set()
        outgoing: list[Decision] = []
        for decision in decisions:
            try:
                if decision.state is State.PENDING and decision.send_at is not None:
                    self.scheduler.ensure(decision.decision_id, decision.send_at, self._now(decision))
            except AWS_ERRORS as error:
                if not retryable(error):
                    raise
                logger.warning(
                    "scheduling failed", extra={"decision_id": decision.decision_id, "error": type(error).__name__}
                )
                failed.add(id(decision))
                continue
            if (
                decision.state is State.CANCELLED
                and decision.state_reason is CancelReason.SUPERSEDED_BY_NEWER_INTERACTION
            ):
                self._drop_schedule(decision.decision_id)
            outgoing.append(decision)
        left = self.publisher.publish(outgoing) if outgoing else []
        failed |= {id(decision) for decision in left}
        return [d for d in decisions if id(d) in failed]

    def _now(self, decision: Decision) -> datetime:
        """When the schedule is made. Under the local event clock time is the traffic's own, which
        the decision carries (the wall clock would push every replayed release to today)."""
        return decision.decided_at if isinstance(self.clock, EventClock) else self.clock.now()

    def _drop_schedule(self, decision_id: str) -> None:
        """A superseded follow-up's schedule has not fired yet: remove it."""
        try:
            self.scheduler.delete(decision_id)
        except AWS_ERRORS as error:
            if not retryable(error):
                raise
            # Left in place it fires, and the release re-check finds the follow-up cancelled.
            logger.warning("schedule not deleted", extra={"decision_id": decision_id, "error": type(error).__name__})
