"""A time range is listed from the day pages the log stream function writes (shared.adapters.day_pages):
through the public path (events decided, the stream handled, the admin API paged), a listing is
what a brute-force filter of the log gives, in order; an entry gone since its page was written is
skipped; a token of the listing by day index is refused with what to do."""

from __future__ import annotations

import urllib.parse
from collections import Counter
from datetime import timedelta
from typing import Any

import boto3
import pytest

from shared import wiring
from shared.adapters import decision_log
from shared.adapters.clock import EventClock, FixedClock
from shared.adapters.log_queries import TOKEN_KIND, DecisionQuery
from shared.domain.decision import Decision
from tests.conftest import NOW, detail, drain, drain_stream, handle_batch, put_events
from tests.integration.test_admin_api import admin_environment, call

__all__ = ["admin_environment"]  # the admin function's environment, for every test here

START, END = NOW - timedelta(days=3), NOW


def decided_over_three_days(aws: Any, count: int) -> None:
    """`count` interactions of 60 customers closed over three days (some days apart, some seconds),
    decided through the queue as of their own time, and the log's stream handled."""
    wiring.use_clock(EventClock())  # each event decided as of its close: the log spans the days
    events = [
        detail(
            event_id=f"day-{n}",
            interaction_id=f"day-i{n}",
            customer_id=f"day-c{n % 60}",
            outcome=["resolved", "unresolved", "abandoned", "resolved"][n % 4],
            # Two in three spread over the days, one in three in bursts seconds apart.
            closed_at=(
                START + timedelta(minutes=10) + timedelta(seconds=(n * 641 if n % 3 else n * 7) % 255_000)
            ).isoformat(),
        )
        for n in range(count)
    ]
    put_events(aws, events)
    drain(aws)
    # The event clock's "now" is the last event's in this thread: the admin API reads the fixed one.
    wiring.use_clock(FixedClock(NOW))


def logged() -> list[Decision]:
    """Every decision in the log, newest first as the admin API orders a range: by hand, with a scan."""
    table = wiring.settings().decision_log_table
    items = boto3.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
    found = [decision_log.from_item(i) for i in items if "record_type" not in i]
    return sorted(found, key=lambda d: (d.decided_at, d.decision_id), reverse=True)


def pages(path: str, limit: int) -> list[list[str]]:
    listed, token = [], None
    while True:
        suffix = f"&next_token={urllib.parse.quote(token)}" if token else ""
        status, _, page = call("GET", f"{path}&limit={limit}{suffix}")
        assert status == 200, page
        listed.append([d["decision_id"] for d in page["items"]])
        token = page["next_token"]
        if not token:
            return listed


RANGE = f"/decisions?from={urllib.parse.quote(START.isoformat())}&to={urllib.parse.quote(END.isoformat())}"


def test_a_range_filtered_by_reason_pages_what_a_brute_force_filter_of_the_log_gives(aws: Any) -> None:
    # Given ~400 decisions over three days, decided through the queue and counted by the stream
    decided_over_three_days(aws, 400)
    log = logged()
    assert len({d.decided_at.date() for d in log}) >= 3
    reason, _ = Counter(str(d.reason) for d in log).most_common(1)[0]
    expected = [d.decision_id for d in log if str(d.reason) == reason and START <= d.decided_at <= END]
    assert 100 < len(expected) < len(log)
    # When the range is listed by that reason, 50 a page, each page resuming from the last's token
    listed = pages(f"{RANGE}&reason={reason}", limit=50)
    # Then the pages are what filtering the whole log by hand gives, newest first, nothing twice
    assert len(listed) >= 3 and all(len(page) == 50 for page in listed[:2])
    assert [i for page in listed for i in page] == expected
    # And without a filter, the range is the whole log, in the same order
    assert [i for page in pages(RANGE, limit=97) for i in page] == [d.decision_id for d in log]


def test_an_entry_gone_since_its_page_was_written_is_skipped(aws: Any) -> None:
    # Given decisions listed on their days' pages, and one entry deleted since (as its TTL would)
    decided_over_three_days(aws, 40)
    log = logged()
    gone = log[5].decision_id
    boto3.client("dynamodb").delete_item(TableName=wiring.settings().decision_log_table, Key=decision_log.key(gone))
    # When the range is listed in small pages
    listed = [i for page in pages(RANGE, limit=4) for i in page]
    # Then every other decision is listed, in order, and the gone one is not
    assert listed == [d.decision_id for d in log if d.decision_id != gone]


def test_a_token_of_the_listing_by_day_index_asks_to_start_the_listing_again(aws: Any) -> None:
    # Given a genuine token the API gave out before day pages: per-shard cursors of the day index
    query = DecisionQuery(start=START, end=END, limit=5)
    cursor = {"decision_id": {"S": "dcn_1"}, "decided_at": {"S": "2026-11-23T09:00:00.000000Z"}}
    state = {"day": "2026-11-23", "cursors": {"2026-11-23#03": cursor, "2026-11-23#07": "done"}}
    token = wiring.token_signer().encode(TOKEN_KIND, query.fingerprint(), state)
    # When it is sent for its query
    status, _, body = call("GET", f"{RANGE}&limit=5&next_token={urllib.parse.quote(token)}")
    # Then it is refused, naming next_token, saying to repeat the query without it
    assert (status, body["code"]) == (400, "INVALID_INPUT")
    assert [f["field"] for f in body["fields"]] == ["next_token"]
    assert "repeat the query without it" in body["message"] and "earlier version" in body["message"]


def test_a_decision_is_listed_in_its_day_once_the_stream_has_counted_it(aws: Any) -> None:
    # Given a decision committed through the queue whose stream batch has not been handled yet
    put_events(aws, [detail(event_id="late-1", interaction_id="late-i1", customer_id="late-c")])
    while handle_batch(aws)[0]:
        pass
    path = "/decisions?from=2026-11-23&to=2026-11-23&limit=10"
    # When the day is listed, Then it is not there yet, though its customer's listing has it
    assert call("GET", path)[2]["items"] == []
    assert [d["event_id"] for d in call("GET", "/decisions?customer_id=late-c")[2]["items"]] == ["late-1"]
    # And once the stream batch is counted (seconds later, deployed), the day lists it
    drain_stream(aws)
    assert [d["event_id"] for d in call("GET", path)[2]["items"]] == ["late-1"]


@pytest.mark.parametrize(
    "state",
    [
        {"day": "2026-11-23", "before": ["yesterday", "dcn_1"]},
        {"day": "2026-11-23", "before": ["2026-11-22T09:00:00.000000", "dcn_1"]},  # a position of another day
        {"day": "2026-11-23", "before": ["2026-11-23T09:00:00.000000"]},
        {"day": "2026-11-19", "before": None},  # before the range
        {"day": "2026-11-23", "after": ["2026-11-23T09:00:00.000000", "dcn_1"]},
    ],
    ids=["not-a-time", "another-day", "no-id", "outside-the-range", "unknown-field"],
)
def test_a_signed_token_whose_position_makes_no_sense_is_refused_naming_next_token(
    aws: Any, state: dict[str, Any]
) -> None:
    # Given a token signed for the query whose state no listing could have given out
    query = DecisionQuery(start=START, end=END, limit=5)
    token = wiring.token_signer().encode(TOKEN_KIND, query.fingerprint(), state)
    # When it is sent, Then it is the same 400 as any token the API did not give out
    status, _, body = call("GET", f"{RANGE}&limit=5&next_token={urllib.parse.quote(token)}")
    assert (status, [f["field"] for f in body["fields"]]) == (400, ["next_token"])
    assert "earlier version" not in body["message"]


def test_a_rare_filter_on_a_busy_range_reads_a_bounded_number_of_entries_per_request(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.adapters import aws as aws_clients
    from shared.adapters import log_queries

    # Given ~400 decisions over three days, the rarest reason among them, and each range request
    # allowed to read 40 entries by key (MAX_EXAMINED, 5,000 in production)
    decided_over_three_days(aws, 400)
    log = logged()
    reason, _ = Counter(str(d.reason) for d in log).most_common()[-1]
    monkeypatch.setattr(log_queries, "MAX_EXAMINED", 40)
    read: list[int] = []

    def count_keys(params: dict[str, Any], **_: Any) -> None:
        read[-1] += sum(len(r["Keys"]) for r in params["RequestItems"].values())

    aws_clients.client("dynamodb").meta.events.register("provide-client-params.dynamodb.BatchGetItem", count_keys)
    # When an admin pages the range filtered by that reason through the admin API, 50 a page
    listed, token, requests = [], None, 0
    while True:
        read.append(0)
        suffix = f"&next_token={urllib.parse.quote(token)}" if token else ""
        status, _, page = call("GET", f"{RANGE}&reason={reason}&limit=50{suffix}")
        assert status == 200, page
        requests += 1
        listed += [d["decision_id"] for d in page["items"]]
        token = page["next_token"]
        if not token:
            break
    # Then no request read more than 40 entries: most answered few or none, with a token to go on
    assert max(read) <= 40
    assert requests >= len(log) // 40
    # And the pages together list exactly what a brute-force filter of the log gives, in order
    assert listed == [d.decision_id for d in log if str(d.reason) == reason and START <= d.decided_at <= END]
