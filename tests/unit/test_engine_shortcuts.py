"""The engine's shortcuts (issue 12: it decides near the speed of parsing) against the plain
formulas they replace, over generated inputs: decision ids without json/base64, quiet hours, the
sliding-window counts by bisection, and the decision built without validating it again."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.domain import engine
from shared.domain.decision import Decision, decision_id_for
from tests.unit.engine_golden import load, policies, run_case


def test_decision_ids_are_the_documented_formula() -> None:
    rng = random.Random(7)
    alphabet = string.printable + 'é"\\\x00\x7f€'
    for _ in range(20_000):
        customer = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        event = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        # The id is "dcn_" and the lower-case unpadded base32 of the first 16 bytes of the sha256
        # of the JSON array [customer_id, event_id] without spaces.
        key = json.dumps([customer, event], separators=(",", ":"))
        expected = "dcn_" + base64.b32encode(hashlib.sha256(key.encode()).digest()[:16]).decode().rstrip("=").lower()
        assert decision_id_for(customer, event) == expected


def quiet_end_plainly(now: datetime, zone: ZoneInfo, start: time, end: time) -> datetime:
    """next_outside_quiet_hours as first written (issue 9)."""
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if start == end:
        return now
    if start > end:
        quiet_now = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    else:
        quiet_now = start <= clock < end
        end_day = local.date()
    if not quiet_now:
        return now
    return max(datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC), now)


def test_quiet_hours_end_where_the_plain_formula_says_across_dst_changes() -> None:
    rng = random.Random(11)
    zones = [ZoneInfo(z) for z in ("Europe/Paris", "America/New_York", "Australia/Sydney", "Asia/Kolkata")]
    zones += [ZoneInfo(z) for z in ("America/St_Johns", "Pacific/Chatham", "UTC", "Europe/London")]
    for _ in range(20_000):
        zone = rng.choice(zones)
        now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 400 * 86_400))
        start = time(rng.randint(0, 23), rng.choice((0, 30, 59)))
        end = time(rng.randint(0, 23), rng.choice((0, 15, 30)))
        found = engine._outside_quiet_hours(now, zone, start, end)
        expected = quiet_end_plainly(now, zone, start, end)
        assert found == expected and found.utcoffset() == expected.utcoffset(), (now, zone, start, end)


def test_window_counts_by_bisection_match_a_brute_force_count() -> None:
    rng = random.Random(5)
    base = datetime(2026, 6, 1, tzinfo=UTC)
    for _ in range(3_000):
        taken = sorted(base + timedelta(hours=rng.randint(-2_000, 300)) for _ in range(rng.randint(0, 12)))
        span = timedelta(hours=rng.choice((6, 48, 24 * 7, 24 * 30)))
        send_at = base + timedelta(hours=rng.randint(-50, 100))
        cap = rng.randint(1, 4)
        starts = [send_at, *(t for t in taken if send_at - span < t <= send_at)]
        load = max(sum(1 for t in taken if s <= t < s + span) for s in starts)
        recent = sum(1 for t in taken if send_at - span < t <= send_at)
        assert engine._loads(taken, span, send_at) == (load, recent)
        if load >= cap:
            candidates = sorted({send_at, *(t + span for t in taken if t + span > send_at)})
            brute = next(
                (
                    c
                    for c in candidates
                    if max(
                        sum(1 for t in taken if s <= t < s + span)
                        for s in [c, *(t for t in taken if c - span < t <= c)]
                    )
                    < cap
                ),
                None,
            )
            assert engine._next_allowed(taken, span, cap, send_at, full_at_send=True) == brute


def test_the_engine_builds_the_decision_validation_would_build() -> None:
    found = policies()
    for case in load()["cases"][::25]:
        # Given a decision the engine built without validating it
        decision = run_case(case, found)
        # When the same values are validated as a model
        validated = Decision.model_validate(decision.model_dump())
        # Then it is the same model, field for field, with the same fields set
        assert validated == decision
        assert validated.model_fields_set <= decision.model_fields_set
        assert decision.model_dump() == validated.model_dump()
