"""A deterministic, realistic sample of InteractionClosed event details, one JSON object a line.

    python -m infra.sample_events > infra/sample-events.ndjson

Four weeks of closed interactions (2026-10-26 to 2026-11-22, across the US change from daylight
saving time on 1 November) from about 120 customers:

- mostly business hours in the customer's own time zone, some evenings and nights, so quiet
  hours matter; weekdays busier than weekends;
- a handful of heavy repeat contacters (10-17 interactions each), often several contacts about
  one issue within a day or two, so caps, cooldowns and the callback triggers bite;
- outcomes about 65% resolved, 15% unresolved, 8% escalated, 12% abandoned, with sentiment,
  contact attempts, reopen counts and handle times where the upstream system knows them;
- a few interactions closed again later (same interaction_id, new event_id) and a few events
  delivered twice (the same event_id, byte for byte), to show idempotency.

Ids are opaque ("cust-000123", "int-…", "evt-…"); nothing here is personal data. The same seed
always gives the same file; a unit test checks the committed file against this generator.
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

SAMPLE_FILE = Path(__file__).resolve().with_name("sample-events.ndjson")
SEED = 20261026

FIRST_DAY = date(2026, 10, 26)
LAST_DAY = date(2026, 11, 22)
START = datetime.combine(FIRST_DAY, time(0), tzinfo=UTC)
END = datetime.combine(LAST_DAY + timedelta(days=1), time(0), tzinfo=UTC)

CUSTOMERS = 120
HEAVY_CUSTOMERS = 6
INTERACTIONS = 384  # first closures; re-closures and duplicate deliveries come on top
RECLOSED = 9
DUPLICATED = 7

CHANNELS = {"phone": 35, "chat": 25, "email": 18, "web": 10, "social": 7, "in_person": 5}
OUTCOMES = {"resolved": 65, "unresolved": 15, "escalated": 8, "abandoned": 12}
# None: the upstream system does not know the customer's zone (the policy default applies).
TIMEZONES: dict[str | None, int] = {
    "Europe/London": 24,
    "Europe/Berlin": 14,
    "America/New_York": 20,
    "America/Los_Angeles": 12,
    "Asia/Tokyo": 6,
    "Australia/Sydney": 6,
    None: 18,
}
SEGMENTS = {"consumer": 58, "smb": 22, "enterprise": 13, "vip": 7}
BRANDS = {"acme-broadband": 45, "acme-mobile": 35, "northwind-energy": 20}
QUEUES = ("billing", "technical", "moving-home", "retention", "outage", "general")
PRODUCTS = ("fibre-500", "fibre-1000", "sim-only", "handset-plan", "dual-fuel", "smart-meter")
LANGUAGES = {"Europe/Berlin": ("de", "de", "en"), "Asia/Tokyo": ("ja", "ja", "en"), "America/Los_Angeles": ("en", "es")}
# Median handle time in seconds per channel (log-normal around it).
HANDLE_MEDIAN = {"phone": 420, "chat": 600, "email": 900, "web": 180, "social": 300, "in_person": 840}

T = TypeVar("T")


@dataclass(frozen=True)
class Customer:
    customer_id: str
    timezone: str | None
    segment: str | None
    brand: str | None
    language: str


def _pick(rng: random.Random, weights: dict[T, int]) -> T:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _customers(rng: random.Random) -> list[Customer]:
    customers = []
    for number in rng.sample(range(1, 1_000_000), CUSTOMERS):
        zone = _pick(rng, TIMEZONES)
        customers.append(
            Customer(
                customer_id=f"cust-{number:06d}",
                timezone=zone,
                segment=_pick(rng, SEGMENTS) if rng.random() < 0.95 else None,
                brand=_pick(rng, BRANDS) if rng.random() < 0.9 else None,
                language=rng.choice(LANGUAGES.get(zone or "", ("en",))),
            )
        )
    return customers


def _interaction_counts(rng: random.Random) -> list[int]:
    """Heavy repeat contacters first (10-17 each), then at least one for everybody else."""
    counts = [rng.randint(10, 17) for _ in range(HEAVY_CUSTOMERS)]
    rest = CUSTOMERS - HEAVY_CUSTOMERS
    others = [1] * rest
    # A long tail: most customers get in touch once or twice, a few up to eight times.
    appetite = [rng.paretovariate(2.0) for _ in range(rest)]
    for _ in range(INTERACTIONS - sum(counts) - rest):
        while True:
            index = rng.choices(range(rest), weights=appetite)[0]
            if others[index] < 8:
                others[index] += 1
                break
    return counts + others


def _local_time(rng: random.Random) -> time:
    """Mostly business hours, some evenings, a few nights."""
    roll = rng.random()
    if roll < 0.8:
        hour = rng.randint(9, 17)
    elif roll < 0.93:
        hour = rng.randint(18, 21)
    else:
        hour = rng.choice([22, 23, 0, 1, 2, 6, 7, 8])
    return time(hour, rng.randint(0, 59), rng.randint(0, 59))


def _first_contact(rng: random.Random, zone: ZoneInfo) -> datetime:
    while True:
        day = FIRST_DAY + timedelta(days=rng.randrange((LAST_DAY - FIRST_DAY).days + 1))
        if day.weekday() >= 5 and rng.random() < 0.6:
            continue  # weekends are quieter
        local = datetime.combine(day, _local_time(rng), tzinfo=zone)
        if START <= local < END:
            return local


def _next_contact(rng: random.Random, previous: datetime) -> datetime:
    """A follow-on contact about the same issue: later that day or within a couple of days."""
    day = previous.date() + timedelta(days=rng.choice([0, 0, 1, 1, 2]))
    later = datetime.combine(day, _local_time(rng), tzinfo=previous.tzinfo)
    if later <= previous + timedelta(minutes=20):
        later = previous + timedelta(minutes=rng.randint(30, 180))
    return later


def _stamp(rng: random.Random, moment: datetime) -> str:
    """Some upstream systems send UTC with Z, others the local offset."""
    if rng.random() < 0.55:
        return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return moment.isoformat(timespec="seconds")


def _sentiment(rng: random.Random, outcome: str) -> float | None:
    if rng.random() < 0.3:
        return None
    mean = {"resolved": 0.35, "unresolved": -0.25, "escalated": -0.4, "abandoned": -0.1}[outcome]
    return round(max(-1.0, min(1.0, rng.gauss(mean, 0.4))), 2)


def _handle_seconds(rng: random.Random, channel: str, outcome: str) -> int | None:
    if rng.random() < 0.08:
        return None
    if outcome == "abandoned":
        return rng.randint(0, 90)
    return min(7 * 24 * 3600, round(HANDLE_MEDIAN[channel] * rng.lognormvariate(0, 0.6)))


def _attributes(rng: random.Random, customer: Customer, channel: str) -> dict[str, Any] | None:
    if rng.random() < 0.7:
        return None
    attributes: dict[str, Any] = {"queue": rng.choice(QUEUES), "language": customer.language}
    if rng.random() < 0.6:
        attributes["product"] = rng.choice(PRODUCTS)
    if channel in ("phone", "chat") and rng.random() < 0.5:
        attributes["agent_tier"] = rng.choice([1, 1, 1, 2, 3])
    return attributes


class _Ids:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.seen: set[str] = set()

    def new(self, prefix: str, bits: int) -> str:
        while True:
            value = f"{prefix}-{self.rng.getrandbits(bits):0{bits // 4}x}"
            if value not in self.seen:
                self.seen.add(value)
                return value


def _detail(
    rng: random.Random,
    ids: _Ids,
    customer: Customer,
    *,
    moment: datetime,
    attempt: int,
    outcome: str,
    interaction_id: str | None = None,
    reopen_count: int | None = None,
) -> dict[str, Any]:
    channel = _pick(rng, CHANNELS)
    detail: dict[str, Any] = {
        "event_id": ids.new("evt", 64),
        "interaction_id": interaction_id or ids.new("int", 40),
        "customer_id": customer.customer_id,
        "channel": channel,
        "closed_at": _stamp(rng, moment),
        "outcome": outcome,
    }
    optional: dict[str, Any] = {
        "handle_seconds": _handle_seconds(rng, channel, outcome),
        "contact_attempts": attempt if rng.random() < 0.75 else None,
        "reopen_count": reopen_count if reopen_count is not None else _reopen_count(rng),
        "sentiment": _sentiment(rng, outcome),
        "customer_timezone": customer.timezone,
        "segment": customer.segment,
        "brand": customer.brand,
        "attributes": _attributes(rng, customer, channel),
    }
    detail.update({key: value for key, value in optional.items() if value is not None})
    return detail


def _reopen_count(rng: random.Random) -> int | None:
    if rng.random() < 0.4:
        return None
    return rng.choices([0, 1, 2], weights=[85, 12, 3])[0]


def _instant(detail: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(detail["closed_at"]).astimezone(UTC)


def generate(seed: int = SEED) -> list[dict[str, Any]]:
    """The sample events, sorted by the instant they closed (ties by event_id)."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    ids = _Ids(rng)
    customers = _customers(rng)
    # The outcome mix of first closures is exact; shuffled, so it falls on anyone.
    outcomes = [o for o, share in OUTCOMES.items() for _ in range(round(INTERACTIONS * share / 100))]
    rng.shuffle(outcomes)
    events: list[dict[str, Any]] = []
    for customer, count in zip(customers, _interaction_counts(rng), strict=True):
        zone = ZoneInfo(customer.timezone or "UTC")
        left = count
        while left:
            # One issue: one contact, or a run of contacts with rising attempt numbers.
            contacts = min(left, rng.choices([1, 2, 3, 4], weights=[70, 18, 8, 4])[0])
            moment = _first_contact(rng, zone)
            for attempt in range(1, contacts + 1):
                if moment >= END:
                    break
                events.append(_detail(rng, ids, customer, moment=moment, attempt=attempt, outcome=outcomes.pop()))
                moment = _next_contact(rng, moment)
            left -= contacts

    # Re-closed: an unresolved or escalated interaction reopened and closed again later.
    by_customer = {c.customer_id: c for c in customers}
    open_ended = [
        e for e in events if e["outcome"] in ("unresolved", "escalated") and _instant(e) < END - timedelta(days=2)
    ]
    for first in rng.sample(open_ended, RECLOSED):
        later = _instant(first) + timedelta(minutes=rng.randint(90, 2 * 24 * 60))
        customer = by_customer[first["customer_id"]]
        outcome = rng.choice(["resolved", "resolved", "resolved", "unresolved", "escalated"])
        events.append(
            _detail(
                rng,
                ids,
                customer,
                moment=later.astimezone(ZoneInfo(customer.timezone or "UTC")),
                attempt=first.get("contact_attempts", 1) + 1,
                outcome=outcome,
                interaction_id=first["interaction_id"],
                reopen_count=first.get("reopen_count", 0) + 1,
            )
        )

    # Delivered twice: at-least-once delivery repeats an event exactly.
    events.extend(dict(event) for event in rng.sample(events, DUPLICATED))
    events.sort(key=lambda e: (_instant(e), e["event_id"]))
    return events


def render(seed: int = SEED) -> str:
    return "".join(json.dumps(event, ensure_ascii=False) + "\n" for event in generate(seed))


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
