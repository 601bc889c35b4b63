"""Where "now" comes from. The engine never reads a clock; the service asks one of these.

Production always uses the wall clock. The event clock (each event decided as of its own
`closed_at` plus a small delay) exists for local replays of recorded traffic; only local tooling
selects it, and nothing in template.yaml can.

The time rule, one for every path (the queue, POST /decide, POST /events, outcomes): a time more than
15 minutes after `present()` is refused as in the future. `present()` is the real present under
the wall and event clocks alike: the event clock moves the moment a decision is taken *as of*,
never what can have happened by now. A recorded interaction is in the past; one stamped in 2027
is a mistake on every path, and under the event clock it would also fire every held follow-up due
before 2027 (EventClock.happened runs them first). The fixed clock's present is its fixed time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the wiring builds a clock at import, before any event model is needed
    from shared.domain.events import InteractionClosed


class WallClock:
    def present(self) -> datetime:
        """What a time stamp may not be much later than (the time rule above)."""
        return datetime.now(UTC)

    def now(self, event: InteractionClosed | None = None) -> datetime:
        return datetime.now(UTC)

    def happened(self, at: datetime) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class EventClock:
    delay: timedelta = timedelta(seconds=30)
    # The local stack's Scheduler: runs every follow-up schedule due by a time before anything
    # happening at that time is processed (moto never fires schedules; infra/local/schedules.py).
    before: Callable[[datetime], object] | None = field(default=None, compare=False)
    _held: threading.local = field(default_factory=threading.local, compare=False, repr=False)

    def present(self) -> datetime:
        """The real present, not the replayed moment (the time rule above)."""
        return datetime.now(UTC)

    def now(self, event: InteractionClosed | None = None) -> datetime:
        """The time of what this thread is processing (the event's, or the last one's it saw: a
        decision's announcement follows its decision); a thread that processed none reads the wall."""
        if event is not None:
            return self.happened(event.closed_at)
        held: datetime | None = getattr(self._held, "at", None)
        return held or datetime.now(UTC)

    def happened(self, at: datetime) -> datetime:
        """The "now" for processing something that happened at `at` (an interaction's close, an
        outcome): due schedules run first, so the traffic sees them in time order."""
        moment = at.astimezone(UTC) + self.delay
        if self.before is not None and not getattr(self._held, "firing", False):
            self.before(moment)
        self._held.at = moment
        return moment

    @contextmanager
    def as_of(self, at: datetime) -> Iterator[None]:
        """In this thread, now() reads `at` while a schedule fired for `at` runs, as it would then."""
        saved = getattr(self._held, "at", None)
        self._held.at, self._held.firing = at, True
        try:
            yield
        finally:
            self._held.at, self._held.firing = saved, False


@dataclass(frozen=True)
class FixedClock:
    """A clock for tests and simulations."""

    at: datetime

    def present(self) -> datetime:
        return self.at

    def now(self, event: InteractionClosed | None = None) -> datetime:
        return self.at

    def happened(self, at: datetime) -> datetime:
        return self.at


Clock = WallClock | EventClock | FixedClock
