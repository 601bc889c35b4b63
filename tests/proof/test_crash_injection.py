"""The decide path and the log stream function killed after each of their steps in turn, then
redelivered (the queue's messages, the stream's batch from its first record, as Lambda retries it):
no decision lost, none doubled, no counter moved twice, every decision published at least once, and
the dedupe key (decision_id) identical across the repeats."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from typing import Any

import boto3
import pytest

from shared import faults, wiring
from shared.adapters.clock import FixedClock
from shared.domain.decision import decision_id_for
from tests.conftest import NOW, detail, drain, drain_stream, handle_batch, ledger_of, log_items, put_events


class Crash(BaseException):
    """The process dying: nothing in the handler can catch it (it is not an Exception)."""


@pytest.fixture(autouse=True)
def clock_and_no_faults(aws: Any) -> Iterator[None]:
    wiring.use_clock(FixedClock(NOW))
    yield
    faults.install(None)


def ten_events() -> list[dict[str, Any]]:
    outcomes = ["resolved", "unresolved", "abandoned", "escalated", "resolved"]
    return [
        detail(event_id=f"cr-{n}", interaction_id=f"cr-i{n}", customer_id=f"cr-c{n % 4}", outcome=outcomes[n % 5])
        for n in range(10)
    ]


DECIDE_POINTS = (faults.AFTER_COMMIT, faults.BEFORE_ACKNOWLEDGE)
STREAM_POINTS = (faults.AFTER_PUBLISH, faults.AFTER_COUNT)


def dying_at(point: str) -> None:
    def die(name: str) -> None:
        if name == point:
            raise Crash(name)

    faults.install(die)


@pytest.mark.parametrize("point", DECIDE_POINTS)
def test_a_decider_crash_after_any_step_loses_and_doubles_nothing(aws: Any, outbound: Any, point: str) -> None:
    # Given ten events of four customers on the queue, and a process that dies at `point`
    events = ten_events()
    put_events(aws, events)
    dying_at(point)
    from functions.decide.app import handler
    from infra.lambda_runtime import LambdaContext, receive_batch, sqs_event

    sqs = boto3.client("sqs")
    messages = receive_batch(sqs, aws.urls["DecideQueue"])
    assert len(messages) == 10
    # When the invocation dies there, nothing is acknowledged
    with pytest.raises(Crash):
        handler(sqs_event(messages, aws.arns["DecideQueue"]), LambdaContext("decide"))
    faults.install(None)
    # And SQS redelivers the whole batch once its visibility timeout passes
    for message in messages:
        sqs.change_message_visibility(
            QueueUrl=aws.urls["DecideQueue"], ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    drain(aws)
    assert_each_decided_counted_and_published_once(aws, outbound, events)


@pytest.mark.parametrize("point", STREAM_POINTS)
def test_a_log_stream_crash_after_any_step_loses_and_doubles_nothing(aws: Any, outbound: Any, point: str) -> None:
    # Given ten events of four customers decided and committed
    events = ten_events()
    put_events(aws, events)
    _, response = handle_batch(aws)
    assert response == {"batchItemFailures": []}
    # When the log stream function dies at `point` on the batch of their log records
    dying_at(point)
    with pytest.raises(Crash):
        drain_stream(aws)
    faults.install(None)
    # And Lambda hands it the same batch again, from the same first record (and the other reader
    # its batch, if the crash came first)
    assert all(a["batchItemFailures"] == [] for a in drain_stream(aws))
    assert_each_decided_counted_and_published_once(aws, outbound, events)


def assert_each_decided_counted_and_published_once(aws: Any, outbound: Any, events: list[dict[str, Any]]) -> None:
    # Then every event has exactly one decision, under its deterministic id (customer, event_id)
    logged = log_items(aws)
    assert sorted(d["event_id"] for d in logged) == sorted(e["event_id"] for e in events)
    assert all(d["decision_id"] == decision_id_for(d["customer_id"], d["event_id"]) for d in logged)
    # And no ledger moved twice: each customer's version equals its approvals
    approvals: dict[str, int] = defaultdict(int)
    for decision in logged:
        approvals[decision["customer_id"]] += decision["action"] != "none"
    for customer in {e["customer_id"] for e in events}:
        assert ledger_of(aws, customer).version == approvals[customer]
    # And the day's counters count each decision once
    (day,) = wiring.stats().days(date(2026, 11, 23), date(2026, 11, 23))
    assert day["total"] == 10
    # And every decision was published at least once, always with the same decision_id and content
    published: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in outbound():
        published[event["detail"]["event_id"]].append(event["detail"])
    by_event = {d["event_id"]: d for d in logged}
    assert set(published) == set(by_event)
    for event_id, copies in published.items():
        assert all(copy == by_event[event_id] for copy in copies)
