"""Announcing a committed decision: what "publishing" means once decisions have a lifecycle.

- a pending decision: its release is scheduled (one-time schedule, idempotent), then
  FollowUpScheduled is published. The schedule comes first: a pending follow-up nobody will
  release must never be announced as done, so a failed schedule leaves the decision unpublished
  (in the outbox) for a retry;
- every follow-up the decision superseded: FollowUpCancelled (its log entry, cancelled in the
  decision's own commit) and its schedule deleted (best effort: the release re-check would cancel
  it anyway);
- otherwise the event of the decision's state (FollowUpApproved, FollowUpSuppressed, ...).

The decide path and the outbox sweep both announce through this one class, so a decision the
outbox finds is announced exactly as the normal path would have.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from aws_lambda_powertools import Logger

from shared.adapters.aws import AWS_ERRORS, retryable
from shared.adapters.clock import Clock, EventClock, WallClock
from shared.domain.decision import Decision, State

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
    lookup: Callable[[str], Decision | None]  # a decision's current log entry
    clock: Clock = field(default_factory=WallClock)

    def publish(self, decisions: Sequence[Decision]) -> list[Decision]:
        """Announces `decisions`; returns those not fully announced (to retry). AWS errors that
        a retry cannot fix propagate (they are bugs)."""
        failed: set[str] = set()
        outgoing: list[Decision] = []
        parent: dict[str, str] = {}  # superseded decision id -> the decision that cancelled it
        for decision in decisions:
            try:
                if decision.state is State.PENDING and decision.send_at is not None:
                    self.scheduler.ensure(decision.decision_id, decision.send_at, self._now(decision))
                cancelled = [self._cancelled(superseded) for superseded in decision.supersedes]
            except AWS_ERRORS as error:
                if not retryable(error):
                    raise
                logger.warning(
                    "announcing failed", extra={"decision_id": decision.decision_id, "error": type(error).__name__}
                )
                failed.add(decision.decision_id)
                continue
            outgoing.append(decision)
            for superseded in cancelled:
                if superseded is not None:
                    outgoing.append(superseded)
                    parent[superseded.decision_id] = decision.decision_id
        left = {d.decision_id for d in self.publisher.publish(outgoing)} if outgoing else set()
        failed |= {parent.get(decision_id, decision_id) for decision_id in left}
        return [d for d in decisions if d.decision_id in failed]

    def _now(self, decision: Decision) -> datetime:
        """When the schedule is made. Under the local event clock time is the traffic's own, which
        the decision carries (the wall clock would push every replayed release to today)."""
        return decision.decided_at if isinstance(self.clock, EventClock) else self.clock.now()

    def _cancelled(self, decision_id: str) -> Decision | None:
        """The superseded decision as logged (cancelled), its schedule removed."""
        try:
            self.scheduler.delete(decision_id)
        except AWS_ERRORS as error:
            if not retryable(error):
                raise
            # Left in place it fires, and the release re-check finds the follow-up cancelled.
            logger.warning("schedule not deleted", extra={"decision_id": decision_id, "error": type(error).__name__})
        found = self.lookup(decision_id)
        return found if found is not None and found.state is State.CANCELLED else None
