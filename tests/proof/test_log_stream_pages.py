"""Day pages ride on the log stream's counting transaction (issue 12, design A): each decision a
batch inserts is listed on its day's pages exactly once, with its count, however the batch is
handed again, cut short or split; log entries carry no `day_shard` (there is no `by-day` index).

Pages are checked raw (every row of every page, duplicates kept) as well as through
shared.adapters.day_pages.DayPages, which drops repeats and so would hide a row listed twice."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

import boto3
import pytest

from shared import wiring
from shared.adapters import aws as aws_clients
from shared.adapters import day_pages, decision_log
from shared.domain import engine
from shared.domain.contacts import ContactLedger
from shared.domain.events import InteractionClosed
from shared.domain.policy import default_policy
from tests.conftest import NOW, detail, drain_stream, handle_batch, log_items, put_events, stream_records
from tests.proof.test_log_stream import (
    OK,
    Crash,
    count,
    dynamodb_requests,
    environment,  # noqa: F401 - autouse: the same functions' environment
    ten_decided,
)


def pages_of(stack: Any, day: date) -> list[dict[str, Any]]:
    """Every page item of `day`, as stored."""
    answer = boto3.client("dynamodb").query(
        TableName=stack.names["StatsTable"],
        KeyConditionExpression="#d = :d",
        ExpressionAttributeNames={"#d": "day"},
        ExpressionAttributeValues={":d": {"S": day_pages.page_day(day)}},
    )
    return list(answer["Items"])


def listed(stack: Any, day: date) -> Counter[str]:
    """How many times each decision id is listed on `day`'s pages: every row of every page, raw."""
    return Counter(row.decision_id for page in pages_of(stack, day) for row in day_pages.rows_of_page(page))


def decided_ids(stack: Any) -> set[str]:
    return {item["decision_id"] for item in log_items(stack) if "action" in item}


def test_a_drained_batch_lists_each_decision_once_on_its_day_and_entries_carry_no_day_shard(aws: Any) -> None:
    # Given ten decisions committed by the decide path
    ten_decided(aws)
    # When the stream's readers handle their records
    assert drain_stream(aws) == [OK, OK]
    # Then each is listed once on its day's pages, and the pages list nothing else
    assert listed(aws, NOW.date()) == Counter(decided_ids(aws))
    rows = day_pages.DayPages(aws.names["StatsTable"]).rows(NOW.date())
    assert {(r.decision_id, r.customer_id) for r in rows} == {
        (item["decision_id"], item["customer_id"]) for item in log_items(aws)
    }
    # And each page expires with the last of the entries it lists (the log's retention)
    entries = boto3.client("dynamodb").scan(TableName=aws.names["DecisionLogTable"])["Items"]
    expiry = {item["decision_id"]["S"]: int(item["expires_at"]["N"]) for item in entries}
    for page in pages_of(aws, NOW.date()):
        listing = [row.decision_id for row in day_pages.rows_of_page(page)]
        assert int(page["expires_at"]["N"]) == max(expiry[i] for i in listing)
    # And the entries themselves are in no day index: they carry no day shard
    assert all("day_shard" not in item for item in entries)


def test_a_batch_handed_again_and_longer_lists_each_decision_once(aws: Any) -> None:
    # Given ten decisions' log records handled as one batch (all decided at the same instant, so
    # the later pages start at the same time as the first one)
    records = ten_decided(aws)
    assert count(aws, records) == OK
    # When Lambda hands the same batch again, then again with a record committed since appended
    assert count(aws, records) == OK
    put_events(aws, [detail(event_id="e-late", interaction_id="i-late", customer_id="c-late")])
    handle_batch(aws)
    longer = stream_records(aws)
    assert count(aws, longer) == OK
    # Then the eleven decisions are each listed once: the appended one's page did not replace the
    # first attempt's (it is keyed by the first record it lists, not by the batch's first record)
    assert listed(aws, NOW.date()) == Counter(decided_ids(aws))
    assert len(decided_ids(aws)) == 11


def spread_over_days(stack: Any, days: int) -> list[str]:
    """One suppressed decision a day for `days` days, written to the log as the decide path writes
    it; their ids."""
    dynamodb, ids = boto3.client("dynamodb"), []
    for n in range(days):
        at = NOW - timedelta(days=n)
        event = InteractionClosed.model_validate(
            detail(event_id=f"e-{n}", interaction_id=f"i-{n}", customer_id=f"c-{n}", outcome="abandoned")
        )
        decision = engine.decide(event, ContactLedger(f"c-{n}"), default_policy(), at)
        dynamodb.put_item(
            TableName=stack.names["DecisionLogTable"], Item=decision_log.to_item(decision, timedelta(days=400))
        )
        ids.append(decision.decision_id)
    return ids


def totals(days: int) -> int:
    return sum(day["total"] for day in wiring.stats().days(NOW.date() - timedelta(days=days), NOW.date()))


def test_a_batch_too_large_for_one_transaction_is_counted_and_listed_in_several(aws: Any) -> None:
    # Given one batch of 60 decisions on 60 days: a receipt, 60 counters and 60 pages, more than a
    # transaction's 100 items
    ids = spread_over_days(aws, 60)
    records = stream_records(aws)
    sent = dynamodb_requests()
    # When the log count function handles it
    assert count(aws, records) == OK
    # Then it counted in two transactions (49 records, the most that fit with the receipt and two
    # items a record, then 11), each decision counted and listed once on its day
    assert sent == ["TransactWriteItems"] * 2
    assert totals(60) == 60
    for n, decision_id in enumerate(ids):
        assert listed(aws, NOW.date() - timedelta(days=n)) == Counter([decision_id])


def test_a_batch_dying_between_its_transactions_is_finished_once_when_handed_again(aws: Any) -> None:
    # Given one batch of 60 decisions on 60 days, and a function that dies at its second transaction
    ids = spread_over_days(aws, 60)
    records = stream_records(aws)
    calls = {"n": 0}

    def die_at_the_second(**_: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise Crash("after the first transaction")

    client = aws_clients.client("dynamodb")
    client.meta.events.register("before-call.dynamodb.TransactWriteItems", die_at_the_second)
    with pytest.raises(Crash):
        count(aws, records)
    assert totals(60) == 49
    # When Lambda hands the batch again
    assert count(aws, records) == OK
    # Then what the first attempt counted is not counted or listed again, and the rest is, once
    assert totals(60) == 60
    for n, decision_id in enumerate(ids):
        assert listed(aws, NOW.date() - timedelta(days=n)) == Counter([decision_id])
