"""The decide path killed after each of its steps in turn, then redelivered: no decision lost,
none doubled, no counter moved twice, every approval published at least once, and the dedupe key
(decision_id) identical across the repeats."""

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
from tests.conftest import NOW, detail, drain, ledger_of, log_items, put_events


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


@pytest.mark.parametrize("point", faults.POINTS)
def test_a_crash_after_any_step_loses_and_doubles_nothing(aws: Any, outbound: Any, point: str) -> None:
    # Given ten events of four customers on the queue, and a process that dies at `point`
    events = ten_events()
    put_events(aws, events)

    def die(name: str) -> None:
        if name == point:
            raise Crash(name)

    faults.install(die)
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
