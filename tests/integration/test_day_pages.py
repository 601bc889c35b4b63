"""Day pages (shared.adapters.day_pages) on moto: what is listed is exactly the decisions written,
in any range, oldest first or newest first from any cursor, however the batches cut them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from shared.adapters import day_pages
from shared.adapters.day_pages import PAGE_SPAN, DayPages, Row

DAY = datetime(2026, 6, 1, tzinfo=UTC)
RETENTION = timedelta(days=400)


def _write_batches(table: str, rows: list[Row], rng: random.Random) -> None:
    """Rows written as stream batches would write them: in arrival order (not quite time order),
    cut into batches of 1-60, each batch's pages in one transaction."""
    dynamodb = boto3.client("dynamodb")
    arrival = sorted(rows, key=lambda r: r.decided_at + timedelta(seconds=rng.uniform(0, 30)))
    sequence = 1000
    while arrival:
        size = rng.randint(1, 60)
        batch, arrival = arrival[:size], arrival[size:]
        puts = day_pages.page_puts(table, str(sequence), batch, RETENTION)
        for start in range(0, len(puts), 100):
            dynamodb.transact_write_items(TransactItems=puts[start : start + 100])
        sequence += size


def _rows(rng: random.Random, count: int) -> list[Row]:
    # Bursts and gaps: some pages span the whole hour, some a second; a few rows share an instant.
    found = []
    for n in range(count):
        moment = DAY + timedelta(seconds=rng.choice((rng.uniform(0, 86_399), rng.uniform(36_000, 36_060))))
        if n and rng.random() < 0.05:
            moment = found[-1].decided_at
        found.append(
            Row(moment.replace(microsecond=rng.choice((0, rng.randrange(1_000_000)))), f"d-{n:04d}", f"c-{n % 37}")
        )
    return found


def _written(aws: Any, seed: int, count: int) -> tuple[list[Row], DayPages]:
    """`count` decisions of DAY written by batches of random size, and a reader of their pages."""
    rng = random.Random(seed)
    rows = _rows(rng, count)
    table = aws.names["StatsTable"]
    _write_batches(table, rows, rng)
    return rows, DayPages(table)


def test_a_range_lists_every_decision_of_it_once_in_order(aws: Any) -> None:
    # Given 600 decisions of a day written by batches of random size, arriving slightly out of order
    rows, pages = _written(aws, 3, 600)
    for start, end in [
        (None, None),
        (DAY + timedelta(hours=10), DAY + timedelta(hours=10, minutes=1)),
        (DAY + timedelta(hours=3, minutes=7), DAY + timedelta(hours=17)),
    ]:
        # When a range is read oldest first
        found = pages.rows(DAY.date(), start, end)
        # Then it is exactly the decisions in the range, each once, by time then id
        expected = sorted(
            r for r in rows if (start is None or r.decided_at >= start) and (end is None or r.decided_at <= end)
        )
        assert found == expected


def test_newest_first_resumes_after_any_cursor(aws: Any) -> None:
    # Given 400 decisions of a day, many of them in one busy minute
    rows, pages = _written(aws, 5, 400)
    expected = sorted(rows, reverse=True)
    # When the day is paged newest first, 23 at a time, each page resuming after the last row read
    listed: list[Row] = []
    before = None
    while True:
        chunk = []
        for row in pages.newest_first(DAY.date(), before=before):
            chunk.append(row)
            if len(chunk) == 23:
                break
        if not chunk:
            break
        listed += chunk
        before = chunk[-1].position
    # Then the pages together are the whole day, newest first, nothing repeated or missed
    assert listed == expected


def test_a_page_spans_at_most_the_page_span_and_a_busy_batch_is_cut(aws: Any) -> None:
    # Given a batch of 1,200 decisions of one minute and 3 of an afternoon
    busy = [Row(DAY + timedelta(milliseconds=40 * n), f"b-{n:05d}", "c") for n in range(1200)]
    spread = [Row(DAY + timedelta(hours=h), f"s-{h}", "c") for h in (13, 15, 17)]
    # When its pages are built
    puts = day_pages.page_puts("t", "7", busy + spread, RETENTION)
    items = [p["Put"]["Item"] for p in puts]
    listed = [day_pages.rows_of_page(item) for item in items]
    # Then no page holds more than PAGE_ROWS rows or spans more than PAGE_SPAN, and all rows are there
    assert all(len(page) <= day_pages.PAGE_ROWS for page in listed)
    assert all(page[-1].decided_at - page[0].decided_at <= PAGE_SPAN for page in listed)
    assert sorted(r for page in listed for r in page) == sorted(busy + spread)
    assert len(items) == 3 + 3  # 500 + 500 + 200 of the busy minute, then one page per hour apart
