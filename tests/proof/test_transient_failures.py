"""Transient AWS failures on each call the decide function makes, for a batch of ten events of
several customers: the batch never raises, only the records the failure touched come back, and
once the fault clears their redelivery leaves every event with exactly one decision, every ledger
moved once per approval, every decision counted once in the stats and published at least once.
The same for each call of the log stream function, which publishes and counts what was committed:
the batch restarts at the first record it did not finish, and nothing is counted twice.

Faults are raised by botocore event hooks on the product's own cached clients (shared.adapters.aws.client),
so moto stays the only AWS: a throttle or a connect timeout before the request is sent (nothing
happened on the server), a read timeout after the response came back (the write happened, the
caller never learnt it).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

from shared import wiring
from shared.adapters import aws as aws_clients
from shared.adapters.clock import FixedClock
from tests.conftest import (
    NOW,
    detail,
    drain,
    drain_stream,
    end_visibility,
    handle_batch,
    ledger_of,
    log_items,
    put_events,
    stream_records,
)

CLOSED = NOW.replace(hour=11)


def _event(n: int, customer: str, outcome: str) -> dict[str, Any]:
    return detail(
        event_id=f"ev-{n:02d}",
        interaction_id=f"int-{n:02d}",
        customer_id=customer,
        outcome=outcome,
        closed_at=CLOSED.replace(minute=n).isoformat(),
    )


# Ten events, five customers, solved / unsolved / abandoned mixed; some customers get two in one batch.
EVENTS = [
    _event(0, "cust-a", "resolved"),
    _event(1, "cust-a", "abandoned"),
    _event(2, "cust-b", "unresolved"),  # an approval: the TransactWriteItems the approval fault hits
    _event(3, "cust-b", "resolved"),
    _event(4, "cust-c", "resolved"),
    _event(5, "cust-c", "abandoned"),
    _event(6, "cust-d", "unresolved"),
    _event(7, "cust-d", "abandoned"),  # a suppression: the PutItem the suppression fault hits
    _event(8, "cust-e", "resolved"),
    _event(9, "cust-e", "abandoned"),  # supersedes the survey held for ev-08: a transaction
]
CUSTOMERS = sorted({e["customer_id"] for e in EVENTS})
APPROVAL_EVENT = '"ev-02"'
SUPPRESSION_EVENT = '"ev-07"'


def _throughput(operation: str) -> Exception:
    return ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "rate exceeded"}}, operation
    )


def _throttling(operation: str) -> Exception:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, operation)


def _connect_timeout(operation: str) -> Exception:
    return ConnectTimeoutError(endpoint_url=f"https://moto.invalid/{operation}")


def _read_timeout(operation: str) -> Exception:
    return ReadTimeoutError(endpoint_url=f"https://moto.invalid/{operation}")


# (error factory, hook): "before-call" = the request never reached AWS; "after-call" = AWS applied it,
# the answer was lost on the way back.
FAULTS = {
    "throughput-exceeded": (_throughput, "before-call"),
    "throttling": (_throttling, "before-call"),
    "connect-timeout": (_connect_timeout, "before-call"),
    "read-timeout-after-write": (_read_timeout, "after-call"),
}


def _is_stats(params: dict[str, Any]) -> bool:
    """The log stream function's counting transaction (its receipt rides in it)."""
    return '"receipt"' in json.dumps(params.get("TransactItems", []), default=repr)


# call name -> (service, operation, which request of that operation is hit, which records must fail)
CALLS = {
    "prefetch": ("dynamodb", "BatchGetItem", lambda p: True, "all"),
    "suppression-put": ("dynamodb", "PutItem", lambda p: SUPPRESSION_EVENT in json.dumps(p, default=repr), "ev-07"),
    "approval-transaction": (
        "dynamodb",
        "TransactWriteItems",
        lambda p: not _is_stats(p) and APPROVAL_EVENT in json.dumps(p, default=repr),
        "ev-02",
    ),
}


@pytest.fixture(autouse=True)
def fixed_clock(aws: Any) -> None:
    wiring.use_clock(FixedClock(NOW))


def _inject_once(service: str, operation: str, hits: Any, make_error: Any, hook: str) -> dict[str, int]:
    """Raises the error once, on the first request of `operation` that `hits` selects, on the product's client."""
    state = {"left": 1, "raised": 0}
    seen: dict[str, Any] = {}

    def remember(params: dict[str, Any], **_: Any) -> None:
        seen["params"] = params

    def fail(**_: Any) -> None:
        if state["left"] and hits(seen["params"]):
            state["left"] -= 1
            state["raised"] += 1
            raise make_error(operation)

    events = aws_clients.client(service).meta.events
    events.register(f"provide-client-params.{service}.{operation}", remember)
    events.register(f"{hook}.{service}.{operation}", fail)
    return state


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_transient_failure_fails_only_the_records_it_touched_and_their_redelivery_decides_once(
    aws: Any, outbound: Any, fault: str, call: str
) -> None:
    # Given ten events of five customers on the bus, and one fault armed on one call of the product's client
    service, operation, hits, affected = CALLS[call]
    make_error, hook = FAULTS[fault]
    state = _inject_once(service, operation, hits, make_error, hook)
    put_events(aws, EVENTS)

    # When the ten arrive in one batch (the handler raising would fail this test here)
    messages, response = handle_batch(aws)

    # Then the fault fired, and exactly the records it touched are reported failed
    assert len(messages) == 10
    assert state["raised"] == 1
    by_event = {json.loads(m["Body"])["detail"]["event_id"]: m["MessageId"] for m in messages}
    expected = set(by_event.values()) if affected == "all" else {by_event[affected]}
    assert {f["itemIdentifier"] for f in response["batchItemFailures"]} == expected

    # When the fault has cleared and SQS redelivers the failed messages
    end_visibility(aws, messages, response)
    responses = drain(aws)

    # Then the redelivery succeeds and nothing is left on the queue
    assert all(r == {"batchItemFailures": []} for r in responses)
    assert handle_batch(aws)[0] == []
    assert_decided_counted_and_published_once(aws, outbound)


def assert_decided_counted_and_published_once(aws: Any, outbound: Any) -> None:
    # And every event has exactly one decision
    decisions = log_items(aws)
    assert sorted(d["event_id"] for d in decisions) == sorted(e["event_id"] for e in EVENTS)

    # And each ledger moved exactly once per approval or supersession (never twice for one)
    approvals = Counter(d["customer_id"] for d in decisions if d["action"] != "none" or d["supersedes"])
    assert approvals, "the batch must hold approvals for this proof to mean something"
    assert {c: ledger_of(aws, c).version for c in CUSTOMERS} == {c: approvals[c] for c in CUSTOMERS}

    # And the daily counters count each decision exactly once
    days = sorted({date.fromisoformat(d["decided_at"][:10]) for d in decisions})
    stats = wiring.stats().days(days[0], days[-1])
    assert sum(s["total"] for s in stats) == len(decisions)
    by_action: Counter[str] = Counter()
    by_reason: Counter[str] = Counter()
    for s in stats:
        by_action.update(s["by_action"])
        by_reason.update(s["by_reason"])
    assert +by_action == Counter(d["action"] for d in decisions)
    assert +by_reason == Counter(d["reasons"][0] for d in decisions)

    # And every decision, every approval in particular, was published at least once, as logged
    # (a survey held by the survey delay is announced as scheduled, and cancelled when the
    # customer's newer interaction superseded it: the lifecycle fields are those of each moment)
    published = outbound()
    logged = {d["decision_id"]: d for d in decisions}
    assert {e["detail"]["decision_id"] for e in published} == set(logged)
    assert all(
        without_lifecycle(e["detail"]) == without_lifecycle(logged[e["detail"]["decision_id"]]) for e in published
    )
    approved = {
        e["detail"]["decision_id"] for e in published if e["detail-type"] in ("FollowUpApproved", "FollowUpScheduled")
    }
    cancelled = {e["detail"]["decision_id"] for e in published if e["detail-type"] == "FollowUpCancelled"}
    assert cancelled == {i for i, d in logged.items() if d["state"] == "cancelled"}
    # (one cancelled before its first announcement got out is announced as cancelled only)
    assert approved | cancelled == {i for i, d in logged.items() if d["action"] != "none"}
    assert approved >= {i for i, d in logged.items() if d["state"] in ("pending", "released")}


def without_lifecycle(decision: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in decision.items() if k not in ("state", "state_reason", "state_changed_at")}


def _first(records: list[dict[str, Any]]) -> str:
    return str(records[0]["dynamodb"]["SequenceNumber"])


def _first_pending(records: list[dict[str, Any]]) -> str:
    pending = [
        r for r in records if r["eventName"] == "INSERT" and r["dynamodb"]["NewImage"]["state"]["S"] == "pending"
    ]
    return str(pending[0]["dynamodb"]["SequenceNumber"])


def _is_receipt_read(params: dict[str, Any]) -> bool:
    return '"receipt"' in json.dumps(params.get("Key", {}), default=repr)


# call name -> (service, operation, which request is hit, the record the batch restarts at: None when
# the function absorbs the failure itself, with a backoff)
STREAM_CALLS = {
    "schedule": ("scheduler", "CreateSchedule", lambda p: True, _first_pending),
    "publish": ("events", "PutEvents", lambda p: True, _first),
    "stats-transaction": ("dynamodb", "TransactWriteItems", _is_stats, None),
}


@pytest.mark.parametrize("call", list(STREAM_CALLS))
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_transient_failure_of_the_log_stream_restarts_its_batch_where_it_stopped_and_counts_once(
    aws: Any, outbound: Any, fault: str, call: str
) -> None:
    from shared.adapters import retry

    retry.use_sleep(lambda _: None)
    # Given ten events of five customers decided and committed
    put_events(aws, EVENTS)
    assert handle_batch(aws)[1] == {"batchItemFailures": []}
    records = stream_records(aws)
    # And one fault armed on one call of the log stream function
    service, operation, hits, restart = STREAM_CALLS[call]
    make_error, hook = FAULTS[fault]
    state = _inject_once(service, operation, hits, make_error, hook)
    # When it handles the batch of their log records
    answers = drain_stream(aws)
    # Then the fault fired, and the batch is reported from the first record it did not finish
    assert state["raised"] == 1
    wanted = [] if restart is None else [{"itemIdentifier": restart(records)}]
    assert answers[0]["batchItemFailures"] == wanted
    # And Lambda's retry from that record finishes it
    assert all(a["batchItemFailures"] == [] for a in drain_stream(aws))
    retry.use_sleep(None)
    assert_decided_counted_and_published_once(aws, outbound)


# ---- contention and partial answers, absorbed inside the invocation with backoff (issue 10, item 5)


def _cancelled(reasons: list[str]) -> Exception:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
            "CancellationReasons": [{"Code": code} for code in reasons],
        },
        "TransactWriteItems",
    )


def _conflict_on_approval(params: dict[str, Any], **_: Any) -> Exception | None:
    items = params.get("TransactItems", [])
    if not _is_stats(params) and APPROVAL_EVENT in json.dumps(items, default=repr):
        return _cancelled(["TransactionConflict", "None"])
    return None


def _conflict_on_suppression(params: dict[str, Any], **_: Any) -> Exception | None:
    if SUPPRESSION_EVENT in json.dumps(params.get("Item", {}), default=repr):
        return ClientError(
            {"Error": {"Code": "TransactionConflictException", "Message": "in a transaction"}}, "PutItem"
        )
    return None


def _conflict_on_stats(params: dict[str, Any], **_: Any) -> Exception | None:
    if _is_stats(params):
        items = params["TransactItems"]
        return _cancelled(["None"] * (len(items) - 1) + ["TransactionConflict"])
    return None


def _raise_once(service: str, operation: str, make: Any) -> dict[str, int]:
    state = {"raised": 0}

    def hook(params: dict[str, Any], **_: Any) -> None:
        error = make(params) if not state["raised"] else None
        if error is not None:
            state["raised"] += 1
            raise error

    # provide-client-params sees the request before it is sent: nothing reaches moto
    aws_clients.client(service).meta.events.register(f"provide-client-params.{service}.{operation}", hook)
    return state


def _unprocessed_once(_: str, operation: str, __: Any) -> dict[str, int]:
    """DynamoDB answering the first ledger read with every key unprocessed (it was throttled)."""
    state = {"raised": 0}
    seen: dict[str, Any] = {}

    def remember(params: dict[str, Any], **_: Any) -> None:
        seen["request"] = params["RequestItems"]

    def unprocess(parsed: dict[str, Any], **_: Any) -> None:
        if not state["raised"]:
            state["raised"] += 1
            parsed["Responses"] = {table: [] for table in seen["request"]}
            parsed["UnprocessedKeys"] = seen["request"]

    events = aws_clients.client("dynamodb").meta.events
    events.register("provide-client-params.dynamodb.BatchGetItem", remember)
    events.register("after-call.dynamodb.BatchGetItem", unprocess)
    return state


def _partial_put_events_once(_: str, operation: str, __: Any) -> dict[str, int]:
    """EventBridge answering the first PutEvents with its first entry failed (throttled)."""
    state = {"raised": 0}

    def fail_first(parsed: dict[str, Any], **_: Any) -> None:
        if not state["raised"]:
            state["raised"] += 1
            parsed["FailedEntryCount"] = 1
            parsed["Entries"][0] = {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}

    aws_clients.client("events").meta.events.register("after-call.events.PutEvents", fail_first)
    return state


CONTENTION = {
    "approval-transaction-conflict": (_raise_once, "dynamodb", "TransactWriteItems", _conflict_on_approval),
    "suppression-put-conflict": (_raise_once, "dynamodb", "PutItem", _conflict_on_suppression),
    "stats-transaction-conflict": (_raise_once, "dynamodb", "TransactWriteItems", _conflict_on_stats),
    "ledger-read-unprocessed": (_unprocessed_once, "dynamodb", "BatchGetItem", None),
    "put-events-partly-failed": (_partial_put_events_once, "events", "PutEvents", None),
}


@pytest.fixture
def sleeps() -> Any:
    from shared.adapters import retry

    waited: list[float] = []
    retry.use_sleep(waited.append)
    yield waited
    retry.use_sleep(None)


@pytest.mark.parametrize("case", list(CONTENTION))
def test_contention_is_absorbed_inside_the_invocation_with_jittered_backoff(
    aws: Any, outbound: Any, sleeps: list[float], case: str
) -> None:
    from shared.adapters import retry

    # Given ten events of five customers, and one conflict or partial answer armed on one call
    arm, service, operation, make = CONTENTION[case]
    state = arm(service, operation, make)
    put_events(aws, EVENTS)

    # When the ten arrive in one batch, and their log records reach the log stream function
    _, response = handle_batch(aws)
    streamed = drain_stream(aws)

    # Then it happened, was waited out with a backoff inside the full-jitter bound, and retried at once:
    # no record is failed back to SQS (which would cost a whole visibility timeout)
    assert state["raised"] == 1
    assert response == {"batchItemFailures": []}
    assert [a["batchItemFailures"] for a in streamed] == [[], []]  # publishing, counting
    assert len(sleeps) >= 1
    assert all(0 <= s <= retry.CAP_SECONDS for s in sleeps)
    # And every event has exactly one decision, each ledger moved once per approval
    decisions = log_items(aws)
    assert sorted(d["event_id"] for d in decisions) == sorted(e["event_id"] for e in EVENTS)
    approvals = Counter(d["customer_id"] for d in decisions if d["action"] != "none" or d["supersedes"])
    assert {c: ledger_of(aws, c).version for c in CUSTOMERS} == {c: approvals[c] for c in CUSTOMERS}
    # And each decision is counted once and published at least once
    stats = wiring.stats().days(date(2026, 11, 23), date(2026, 11, 23))
    assert sum(s["total"] for s in stats) == len(decisions)
    assert {e["detail"]["decision_id"] for e in outbound()} == {d["decision_id"] for d in decisions}
