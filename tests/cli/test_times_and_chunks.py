"""The admin commands' pure parts: human times, range chunks, CSV header stitching, merged totals."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from cli.admin import DECISION_RANGE, TICK, chunks, merge_totals, parse_when, without_first_line

NOW = datetime(2026, 11, 30, 22, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("7d", NOW - timedelta(days=7), NOW - timedelta(days=7)),
        ("36h", NOW - timedelta(hours=36), NOW - timedelta(hours=36)),
        ("30m", NOW - timedelta(minutes=30), NOW - timedelta(minutes=30)),
        ("2w", NOW - timedelta(weeks=2), NOW - timedelta(weeks=2)),
        ("now", NOW, NOW),
        ("today", datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=UTC)),
        ("Yesterday", datetime(2026, 11, 29, tzinfo=UTC), datetime(2026, 11, 29, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 1, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2026-11-01T09:00Z", datetime(2026, 11, 1, 9, tzinfo=UTC), datetime(2026, 11, 1, 9, tzinfo=UTC)),
        ("2026-11-01T09:00", datetime(2026, 11, 1, 9, tzinfo=UTC), datetime(2026, 11, 1, 9, tzinfo=UTC)),
        ("2026-11-01T10:00+01:00", datetime(2026, 11, 1, 9, tzinfo=UTC), datetime(2026, 11, 1, 9, tzinfo=UTC)),
    ],
)
def test_human_times_mean_what_people_mean(text: str, start: datetime, end: datetime) -> None:
    # Given a time as a person types it, When it is parsed, Then it starts and ends where they mean
    when = parse_when(text, NOW)
    assert when.start == start
    assert when.end == end


@pytest.mark.parametrize("text", ["yesterdayx", "7 parsecs", "2026-13-01", "", "99999999d"])
def test_a_time_that_is_not_one_is_refused_in_our_words(text: str) -> None:
    # Given something that is not a time, When it is parsed, Then the error says what to type instead
    with pytest.raises(ValueError, match=r"is not a time|before the year 1") as refused:
        parse_when(text, NOW)
    assert "isoformat" not in str(refused.value)


@pytest.mark.parametrize("days", [1, 31, 32, 62, 63, 400])
def test_a_range_splits_into_contiguous_requests_the_api_accepts(days: int) -> None:
    # Given a range of any length
    first, last = NOW - timedelta(days=days), NOW
    # When it is split
    parts = list(chunks(first, last))
    # Then the parts are newest first, each within the API's limit, and meet without gap or overlap
    assert parts[0][1] == last and parts[-1][0] == first
    assert all(end - start <= DECISION_RANGE for start, end in parts)
    assert all(later[0] - earlier[1] == TICK for later, earlier in itertools.pairwise(parts))
    assert len(parts) == -(-days // 31)


def test_a_later_chunks_csv_header_is_dropped_however_the_stream_is_cut() -> None:
    # Given a CSV page arriving in pieces that split its header
    pieces = iter(["decision_id,ac", "tion\nd1,survey\n", "d2,none\n"])
    # When its first line is dropped, Then only the rows remain
    assert "".join(without_first_line(pieces)) == "d1,survey\nd2,none\n"


def test_totals_of_consecutive_ranges_add_up_and_the_rate_is_recomputed() -> None:
    # Given the totals of two stats requests
    newer = {
        "day": "2026-01-01..2026-12-31",
        "total": 3,
        "by_action": {"none": 1, "survey": 2},
        "by_reason": {"SURVEY_ELIGIBLE": 2, "OPTED_OUT": 1},
        "released": 2,
        "cancelled": 0,
        "released_by_action": {"survey": 2},
        "cancelled_by_reason": {},
        "suppression_rate": 0.3333,
    }
    older = {
        "day": "2025-01-01..2025-12-31",
        "total": 1,
        "by_action": {"none": 1},
        "by_reason": {"OPTED_OUT": 1},
        "released": 0,
        "cancelled": 1,
        "released_by_action": {},
        "cancelled_by_reason": {"EXPIRED": 1},
        "suppression_rate": 1.0,
    }
    # When they are merged
    merged = merge_totals([newer, older])
    # Then the counts add up over the whole range
    assert merged["day"] == "2025-01-01..2026-12-31"
    assert merged["total"] == 4 and merged["by_action"] == {"none": 2, "survey": 2}
    assert merged["by_reason"] == {"OPTED_OUT": 2, "SURVEY_ELIGIBLE": 2}
    assert merged["suppression_rate"] == 0.5 and merged["cancelled_by_reason"] == {"EXPIRED": 1}
