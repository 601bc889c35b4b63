"""Redelivery has no double effects: forty varied events decided through the queue, then every one of
them delivered again at once and again fourteen days later, leave the log, the ledgers and the stats
exactly as the first pass left them, and publish nothing more (a repeat writes nothing, so the log's
stream, which published each decision once, carries nothing new). And a dead-letter redrive after an
operator fixed the parked events decides them exactly once, even if run twice."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import Any

import boto3
import pytest

from infra.lambda_runtime import receive_batch
from shared import wiring
from shared.adapters.clock import FixedClock
from tests.conftest import NOW, detail, drain, handle_batch, ledger_of, log_items, put_events

CHANNELS = ["phone", "chat", "email", "web", "social", "in_person"]
OUTCOMES = ["resolved", "unresolved", "abandoned", "resolved", "escalated"]


@pytest.fixture(autouse=True)
def fixed_clock(aws: Any) -> None:
    wiring.use_clock(FixedClock(NOW))


def _varied_events(count: int = 40) -> list[dict[str, Any]]:
    """Seven customers, every outcome and channel, closed over the last two days; a few interactions
    re-closed under a new event id."""
    events = []
    for n in range(count):
        interaction = f"int-{n - 1:02d}" if n % 9 == 8 else f"int-{n:02d}"
        events.append(
            detail(
                event_id=f"ev-{n:02d}",
                interaction_id=interaction,
                customer_id=f"cust-{n % 7}",
                channel=CHANNELS[n % len(CHANNELS)],
                outcome=OUTCOMES[n % len(OUTCOMES)],
                closed_at=(NOW - timedelta(hours=1 + (n * 53) % 47, minutes=n)).isoformat(),
            )
        )
    return events


def _raw_log(stack: Any) -> dict[str, dict[str, Any]]:
    """The decision log as stored, every attribute (fingerprint and expiry included)."""
    items = boto3.client("dynamodb").scan(TableName=stack.names["DecisionLogTable"], ConsistentRead=True)["Items"]
    return {item["decision_id"]["S"]: item for item in items}


def _stats() -> list[dict[str, Any]]:
    return wiring.stats().days((NOW - timedelta(days=20)).date(), (NOW + timedelta(days=20)).date())


def _stats_totals() -> tuple[int, Counter[str], Counter[str]]:
    by_action: Counter[str] = Counter()
    by_reason: Counter[str] = Counter()
    total = 0
    for day in _stats():
        total += day["total"]
        by_action.update(day["by_action"])
        by_reason.update(day["by_reason"])
    return total, +by_action, +by_reason


def _assert_counted_once(decisions: list[dict[str, Any]]) -> None:
    total, by_action, by_reason = _stats_totals()
    assert total == len(decisions)
    assert by_action == Counter(d["action"] for d in decisions)
    assert by_reason == Counter(d["reasons"][0] for d in decisions)


def test_every_event_redelivered_now_and_two_weeks_later_changes_nothing_and_publishes_nothing_more(
    aws: Any, outbound: Any
) -> None:
    # Given forty varied events of seven customers decided through the queue
    events = _varied_events()
    customers = sorted({e["customer_id"] for e in events})
    put_events(aws, events)
    assert all(r == {"batchItemFailures": []} for r in drain(aws))
    first = {d["decision_id"]: d for d in log_items(aws)}
    raw_first = _raw_log(aws)
    ledgers_first = {c: ledger_of(aws, c) for c in customers}
    stats_first = _stats()
    published_first = {e["detail"]["decision_id"]: e for e in outbound()}
    # (the pass is varied: approvals and suppressions, several reasons, every event decided once)
    assert sorted(d["event_id"] for d in first.values()) == sorted(e["event_id"] for e in events)
    assert {d["action"] for d in first.values()} >= {"survey", "callback", "none"}
    assert len({d["reasons"][0] for d in first.values()}) >= 4
    assert set(published_first) == set(first)
    _assert_counted_once(list(first.values()))

    for moved in (timedelta(0), timedelta(days=14)):
        # When every event is delivered again (at once, then fourteen days later)
        wiring.use_clock(FixedClock(NOW + moved))
        put_events(aws, events)
        responses = drain(aws)

        # Then nothing fails and nothing is left on the queue
        assert all(r == {"batchItemFailures": []} for r in responses), moved
        assert handle_batch(aws)[0] == []
        # And the log holds exactly the first decisions, same ids, same content, same stored items
        assert {d["decision_id"]: d for d in log_items(aws)} == first, moved
        assert _raw_log(aws) == raw_first, moved
        # And no ledger moved
        assert {c: ledger_of(aws, c) for c in customers} == ledgers_first, moved
        # And the daily counters are unchanged (no day gained or lost a count)
        assert _stats() == stats_first, moved
        # And nothing is published again: the first publication (one per decision) stands
        assert outbound() == [], moved


def _redrive(stack: Any, *, delete: bool) -> list[str]:
    """An operator's redrive: each parked message is fixed (the unknown field dropped from its detail)
    and sent back to the decide queue; with delete=False the script dies before deleting the originals,
    which then become visible again in the dead-letter queue. Returns the event ids sent."""
    sqs = boto3.client("sqs")
    dlq, queue = stack.urls["DecideDeadLetterQueue"], stack.urls["DecideQueue"]
    sent, left_behind = [], []
    while messages := receive_batch(sqs, dlq):
        for message in messages:
            body = json.loads(message["Body"])
            body["detail"].pop("priority", None)
            sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(body))
            sent.append(body["detail"]["event_id"])
            if delete:
                sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
            else:
                left_behind.append(message["ReceiptHandle"])
    for handle in left_behind:
        sqs.change_message_visibility(QueueUrl=dlq, ReceiptHandle=handle, VisibilityTimeout=0)
    return sent


def test_a_dead_letter_redrive_after_a_fix_decides_each_parked_event_exactly_once_even_run_twice(
    aws: Any, outbound: Any
) -> None:
    # Given three good events and four whose detail carries a field the contract does not know
    good = [detail(event_id=f"ok-{n}", interaction_id=f"int-ok-{n}", customer_id=f"cust-{n}") for n in range(3)]
    bad = [
        detail(
            event_id=f"bad-{n}",
            interaction_id=f"int-bad-{n}",
            customer_id=f"cust-{n % 2}",
            outcome=["unresolved", "resolved", "abandoned", "unresolved"][n],
            priority="high",
        )
        for n in range(4)
    ]
    put_events(aws, [*good[:2], *bad, good[2]])
    assert all(r == {"batchItemFailures": []} for r in drain(aws))
    # (the good ones are decided, the bad ones parked in the dead-letter queue, naming the field)
    assert sorted(d["event_id"] for d in log_items(aws)) == ["ok-0", "ok-1", "ok-2"]
    sqs = boto3.client("sqs")
    parked = receive_batch(sqs, aws.urls["DecideDeadLetterQueue"])
    assert sorted(json.loads(m["Body"])["detail"]["event_id"] for m in parked) == sorted(e["event_id"] for e in bad)
    assert {m["MessageAttributes"]["governor_fields"]["StringValue"] for m in parked} == {"detail.priority"}
    for message in parked:
        sqs.change_message_visibility(
            QueueUrl=aws.urls["DecideDeadLetterQueue"], ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    outbound()

    # When, the next day, an operator redrives the fixed events, but the script dies before deleting them
    wiring.use_clock(FixedClock(NOW + timedelta(days=1)))
    first_run = _redrive(aws, delete=False)
    assert all(r == {"batchItemFailures": []} for r in drain(aws))
    after_first = {d["decision_id"]: d for d in log_items(aws)}
    ledgers_after_first = {c: ledger_of(aws, c) for c in ("cust-0", "cust-1", "cust-2")}
    published_first = outbound()
    # And the operator runs the redrive again, to the end, and once more for good measure
    second_run = _redrive(aws, delete=True)
    third_run = _redrive(aws, delete=True)
    assert all(r == {"batchItemFailures": []} for r in drain(aws))

    # Then both runs sent every parked event, the last found nothing, and both queues are empty
    assert sorted(first_run) == sorted(second_run) == sorted(e["event_id"] for e in bad)
    assert third_run == []
    assert receive_batch(sqs, aws.urls["DecideDeadLetterQueue"]) == []
    assert handle_batch(aws)[0] == []
    # And each fixed event was decided exactly once, by the first run; the second changed nothing
    decisions = log_items(aws)
    assert sorted(d["event_id"] for d in decisions) == sorted(e["event_id"] for e in [*good, *bad])
    assert {d["decision_id"]: d for d in decisions} == after_first
    assert {c: ledger_of(aws, c) for c in ledgers_after_first} == ledgers_after_first
    approvals = Counter(d["customer_id"] for d in decisions if d["action"] != "none")
    assert {c: ledger.version for c, ledger in ledgers_after_first.items()} == {
        c: approvals[c] for c in ledgers_after_first
    }
    # And the counters count every decision once
    _assert_counted_once(decisions)
    # And each redriven decision was published once, by the run that decided it, as logged
    redriven = {d["decision_id"]: d for d in decisions if d["event_id"].startswith("bad-")}
    published = [*published_first, *outbound()]
    assert Counter(e["detail"]["decision_id"] for e in published) == Counter({i: 1 for i in redriven})
    assert all(e["detail"] == redriven[e["detail"]["decision_id"]] for e in published)
