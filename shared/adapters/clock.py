"""Where "now" comes from. The engine never reads a clock; the service asks one of these.

Production always uses the wall clock. The event clock (each event decided as of its own
`closed_at` plus a small delay) exists for local replays of recorded traffic; only local tooling
selects it, and nothing in template.yaml can.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.domain.events import InteractionClosed


class WallClock:
    refuses_future_events = True

    def now(self, event: InteractionClosed | None = None) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class EventClock:
    delay: timedelta = timedelta(seconds=30)
    refuses_future_events = False

    def now(self, event: InteractionClosed | None = None) -> datetime:
        if event is None:
            return datetime.now(UTC)
        return event.closed_at.astimezone(UTC) + self.delay


@dataclass(frozen=True)
class FixedClock:
    """A clock for tests and simulations."""

    at: datetime
    refuses_future_events = True

    def now(self, event: InteractionClosed | None = None) -> datetime:
        return self.at


Clock = WallClock | EventClock | FixedClock
