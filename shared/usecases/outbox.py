"""The outbox sweep: publish and count the committed decisions the normal path left behind.

A decision is committed before it is published. On the queue path a failed publish is retried by
SQS's redelivery, but nothing redelivers a POST /decide whose caller gave up or an Amazon Connect
invoke, and a decision redelivered five times in vain ends in the dead-letter queue. Such a
decision still holds its ledger slot, so it must reach its consumers: every log entry is written
in the outbox and leaves it only in the transaction that counts it after a successful publish
(shared.adapters.stats). The outbox function runs this sweep every minute.

It announces each as the decide path does (shared.usecases.announce): a pending decision gets its
release scheduled before FollowUpScheduled goes out, and the follow-ups a decision superseded are
announced as cancelled, their schedules deleted.

It looks only at decisions older than GRACE, so it does not race the normal path, which publishes
and counts within the same invocation. Publishing is at least once (consumers dedupe on
decision_id); counting stays exactly once (the counted mark is conditional).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from shared.adapters.clock import Clock, WallClock
from shared.domain.decision import Decision
from shared.usecases.decide import Counting, Publishing

GRACE = timedelta(minutes=2)
MAX_PER_RUN = 500  # well inside the function's timeout; the rest waits for the next minute
CHUNK = 25  # decisions per publish + count: one counting transaction stays far below 100 items

logger = Logger(child=True)


class Pending(Protocol):
    def pending(self, before: datetime, limit: int) -> list[Decision]: ...


@dataclass(frozen=True)
class SweepReport:
    found: int
    published: int
    counted: int

    def as_dict(self) -> dict[str, Any]:
        return {"found": self.found, "published": self.published, "counted": self.counted}


@dataclass
class OutboxSweeper:
    outbox: Pending
    publisher: Publishing
    stats: Counting
    clock: Clock = field(default_factory=WallClock)
    grace: timedelta = GRACE

    def sweep(self) -> SweepReport:
        """One pass. AWS errors propagate: the invocation fails (Errors alarm) and the next run,
        a minute later, takes over where this one stopped; nothing done so far is undone."""
        now = self.clock.now()
        found = self.outbox.pending(now - self.grace, MAX_PER_RUN)
        published = counted = 0
        for start in range(0, len(found), CHUNK):
            chunk = found[start : start + CHUNK]
            unpublished = {d.decision_id for d in self.publisher.publish(chunk)}
            sent = [d for d in chunk if d.decision_id not in unpublished]
            left = self.stats.count(sent, now) if sent else []
            published += len(sent)
            counted += len(sent) - len(left)
        if found:
            logger.info(
                "outbox swept",
                extra={"found": len(found), "published": published, "counted": counted},
            )
        if counted < len(found):
            logger.warning("outbox entries left for the next run", extra={"left": len(found) - counted})
        return SweepReport(len(found), published, counted)
