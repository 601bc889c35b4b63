"""Customer time zones for tests that run on the wall clock.

The default policy holds follow-ups through quiet hours (20:00-09:00 in the customer's zone), so a
test whose customer lives in a named zone passes at some hours of the day and fails at others. These
tests put their customer where it is a chosen hour now, whatever time the suite runs.
"""

from __future__ import annotations

from datetime import UTC, datetime


def zone_where_it_is(hour: int, now: datetime | None = None) -> str:
    """A fixed-offset zone in which `now` (default: the present) falls in `hour` (Etc/GMT signs are
    inverted: Etc/GMT-3 is UTC+3)."""
    offset = (hour - (now or datetime.now(UTC)).hour + 12) % 24 - 12  # -12..+11
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")
