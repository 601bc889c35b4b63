"""Deterministic, varied InteractionClosed details and contact ledgers for the benchmarks."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.domain.contacts import ContactLedger, FollowUp
from shared.domain.decision import Action, decision_id_for

CHANNELS = ("phone", "chat", "email", "web", "social", "in_person")
OUTCOMES = ("resolved", "unresolved", "escalated", "abandoned")
OUTCOME_WEIGHTS = (66, 16, 6, 12)
TIMEZONES = ("Europe/Paris", "America/New_York", "America/Los_Angeles", "Asia/Tokyo", "Australia/Sydney", "UTC")
SEGMENTS = ("consumer", "smb", "enterprise", "vip")
BRANDS = ("acme", "globex", "initech")


def stamp(moment: datetime, zone: str | None) -> str:
    """RFC 3339 with an offset: local time with the customer's offset when known, else Z."""
    if zone:
        return moment.astimezone(ZoneInfo(zone)).isoformat(timespec="seconds")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def detail(rng: random.Random, tag: str, customer_id: str, closed_at: datetime, zone: str | None) -> dict[str, Any]:
    """One valid InteractionClosed detail with a realistic mix of optional fields."""
    found: dict[str, Any] = {
        "event_id": f"evt-{tag}",
        "interaction_id": f"int-{tag}",
        "customer_id": customer_id,
        "channel": rng.choice(CHANNELS),
        "closed_at": stamp(closed_at, zone),
        "outcome": rng.choices(OUTCOMES, OUTCOME_WEIGHTS)[0],
    }
    if rng.random() < 0.7:
        found["handle_seconds"] = int(min(7200, rng.lognormvariate(5.5, 0.9)))
    if rng.random() < 0.5:
        found["contact_attempts"] = rng.choices((1, 2, 3, 4, 6), (60, 20, 10, 6, 4))[0]
    if rng.random() < 0.4:
        found["reopen_count"] = rng.choices((0, 1, 2), (85, 12, 3))[0]
    if rng.random() < 0.6:
        found["sentiment"] = round(rng.uniform(-1, 1), 2)
    if zone:
        found["customer_timezone"] = zone
    if rng.random() < 0.3:
        found["segment"] = rng.choice(SEGMENTS)
    if rng.random() < 0.3:
        found["brand"] = rng.choice(BRANDS)
    if rng.random() < 0.2:
        found["attributes"] = {
            "queue": rng.choice(("billing", "tech", "sales")),
            "agent_team": f"team-{rng.randint(1, 9)}",
        }
    return found


def customer_zone(rng: random.Random) -> str | None:
    return rng.choice(TIMEZONES) if rng.random() < 0.7 else None


def ledger_for(rng: random.Random, customer_id: str, interaction_id: str, now: datetime) -> ContactLedger:
    """A ledger as the product keeps it: only follow-ups of the last year, usually few.

    40% empty, 35% one to three follow-ups, 20% four to twelve, 5% a busy year of callbacks;
    3% already hold this very interaction (a re-closed interaction).
    """
    size = rng.choices((0, rng.randint(1, 3), rng.randint(4, 12), rng.randint(30, 56)), (40, 35, 20, 5))[0]
    followups = []
    for n in range(size):
        kind = Action.CALLBACK if rng.random() < 0.6 else Action.SURVEY
        send_at = now - timedelta(days=rng.uniform(0, 365))
        interaction = f"{interaction_id}-past-{n}"
        followups.append(FollowUp(kind, send_at, interaction, decision_id_for(customer_id, f"evt-{interaction}")))
    if rng.random() < 0.03:
        followups.append(
            FollowUp(Action.SURVEY, now - timedelta(days=2), interaction_id, decision_id_for(customer_id, "earlier"))
        )
    followups.sort(key=lambda f: f.send_at)
    return ContactLedger(customer_id, version=len(followups), followups=tuple(followups))


# One day of a large contact centre (bench part 5): what a stream batch holds in production is a few
# seconds of ONE day's traffic, mostly customers with one interaction that day and a history.
HISTORY_PER_CUSTOMER = (1, 3)  # past interactions per customer, uniform
HISTORY_DAYS = 90
# The history ends this long before the measured day: a follow-up is held at most about a day
# (survey delay, then quiet hours; shared.domain.policy._SENT_AHEAD is 2 days), so every past
# follow-up is released or cancelled before the day starts and no measured decision meets one
# still held.
HISTORY_SETTLED = timedelta(days=2)


@dataclass(frozen=True)
class ContactCentreDay:
    """`measured`: one interaction per customer, closed at random within `day` (a UTC day; decided
    within it too, on the event clock), in time order. `past`: each customer's 1-3 earlier
    interactions at random over the HISTORY_DAYS before it (ending HISTORY_SETTLED before), in time
    order, decided first and not measured."""

    day: datetime
    past: list[dict[str, Any]]
    measured: list[dict[str, Any]]

    @property
    def customers(self) -> int:
        return len(self.measured)


def contact_centre_day(
    customers: int,
    day: datetime,
    seed: int = 5,
    history: tuple[int, int] = HISTORY_PER_CUSTOMER,
    history_days: int = HISTORY_DAYS,
) -> ContactCentreDay:
    """A deterministic (seeded) day of `customers` interactions, with their customers' histories."""
    from shared.adapters.clock import EventClock

    rng = random.Random(seed)
    zones = random.Random(f"{seed}-zones")
    start = day.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    # The event clock decides at closed_at + its delay: keep that inside the day too.
    within = 86_400 - 1 - EventClock.delay.total_seconds()
    history_start = start - timedelta(days=history_days)
    history_span = (history_days * 86_400) - HISTORY_SETTLED.total_seconds()
    past: list[tuple[datetime, str, dict[str, Any]]] = []
    measured: list[tuple[datetime, str, dict[str, Any]]] = []
    for n in range(customers):
        cid = f"cust-day-{n:07d}"
        zone = customer_zone(zones)
        closed_at = start + timedelta(seconds=int(rng.uniform(0, within)))
        found = detail(rng, f"now-{cid}", cid, closed_at, zone)
        measured.append((closed_at, found["event_id"], found))
        for k in range(rng.randint(*history)):
            at = history_start + timedelta(seconds=int(rng.uniform(0, history_span)))
            found = detail(rng, f"past-{cid}-{k}", cid, at, zone)
            past.append((at, found["event_id"], found))
    past.sort(key=lambda x: (x[0], x[1]))
    measured.sort(key=lambda x: (x[0], x[1]))
    return ContactCentreDay(start, [d for *_, d in past], [d for *_, d in measured])
