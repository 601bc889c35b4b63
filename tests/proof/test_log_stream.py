"""The decision log's stream is the outbox (issue 12): the decide path only commits; the log
stream function publishes every committed decision and state change, and the log count function,
the stream's second reader, counts it exactly once with one transaction per batch, keyed by the
batch's first sequence number.

The functions run as Lambda's event source mappings run them (infra.local.streams, through
tests.conftest.drain_stream), or straight through a handler when a test must hand it one batch
twice. Faults are injected on the product's own cached clients (botocore event hooks) and at the
named checkpoints of shared.faults; moto is the only AWS."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import boto3
import pytest

from infra.lambda_runtime import LambdaContext, api_gateway_event
from infra.local import moto_speedups
from infra.local.streams import lambda_record, log_stream
from shared import faults, wiring
from shared.adapters import aws as aws_clients
from shared.adapters import decision_log, publisher
from shared.adapters.clock import FixedClock
from shared.adapters.store import LedgerStale
from shared.domain.decision import State
from shared.domain.events import InteractionClosed
from shared.usecases.decide import Governor
from tests.conftest import NOW, detail, drain, drain_stream, handle_batch, log_items, put_events, stream_records


class Crash(BaseException):
    """The process dying: nothing in the handler can catch it (it is not an Exception)."""


@pytest.fixture(autouse=True)
def environment(aws: Any) -> Iterator[None]:
    import os

    for function in ("DecideApiFunction", "ReleaseFunction", "LogStreamFunction", "LogCountFunction"):
        os.environ.update(aws.environment(function))
    wiring.reset()
    wiring.use_clock(FixedClock(NOW))
    yield
    faults.install(None)


def counted() -> dict[str, Any]:
    """Every counter of the days around NOW, summed."""
    totals: Counter[str] = Counter()
    for day in wiring.stats().days(date(2026, 11, 22), date(2026, 11, 25)):
        totals["total"] += day["total"]
        totals["released"] += day["released"]
        totals["cancelled"] += day["cancelled"]
        totals.update({f"a_{k}": v for k, v in day["by_action"].items()})
    return dict(+totals)


OK = {"batchItemFailures": []}


def count(stack: Any, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The log count function handed exactly these records as one batch, as Lambda hands them."""
    from functions.log_count.app import handler

    arn = stack.get_att("DecisionLogTable", "StreamArn")
    event = {"Records": [lambda_record(r, arn, "us-east-1") for r in records]}
    return handler(event, LambdaContext("LogCountFunction"))  # type: ignore[no-any-return]


def sequence(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


def capture_put_events() -> list[dict[str, Any]]:
    """Every entry the product's PutEvents requests carry, as sent."""
    sent: list[dict[str, Any]] = []

    def remember(params: dict[str, Any], **_: Any) -> None:
        sent.extend(dict(e) for e in params["Entries"])

    aws_clients.client("events").meta.events.register("provide-client-params.events.PutEvents", remember)
    return sent


def refuse_entries_of(decision_id: str) -> dict[str, bool]:
    """EventBridge refusing, entry by entry, every event about `decision_id` until switched off (the
    entry is sent malformed, so EventBridge answers it failed and delivers the others)."""
    refusing = {"on": True}

    def spoil(params: dict[str, Any], **_: Any) -> None:
        if refusing["on"]:
            params["Entries"] = [{**e, "Detail": "{"} if decision_id in e["Detail"] else e for e in params["Entries"]]

    aws_clients.client("events").meta.events.register("provide-client-params.events.PutEvents", spoil)
    return refusing


# ---- publishing: what the decide path used to publish, byte for byte --------------------------


def test_each_commit_is_published_by_the_stream_exactly_as_the_decide_path_published_it(aws: Any) -> None:
    # Given decisions of every kind made by the decide path's own Governor (the objects it used to publish)
    store = wiring.store()
    governor = Governor(store, clock=FixedClock(NOW))
    made = [
        governor.decide(InteractionClosed.model_validate(event)).decision
        for event in (
            detail(event_id="e-held", interaction_id="i-held", customer_id="c-1", closed_at=NOW.isoformat()),
            detail(event_id="e-cb", interaction_id="i-cb", customer_id="c-2", outcome="unresolved"),
            detail(event_id="e-none", interaction_id="i-none", customer_id="c-3", outcome="abandoned"),
        )
    ]
    assert [d.state for d in made] == [State.PENDING, State.RELEASED, State.SUPPRESSED]
    later = NOW + timedelta(minutes=40)
    newer = Governor(store, clock=FixedClock(later)).decide(
        InteractionClosed.model_validate(
            detail(event_id="e-new", interaction_id="i-new", customer_id="c-1", closed_at=later.isoformat())
        )
    )
    assert newer.decision.supersedes == (made[0].decision_id,)
    superseded = store.get_decision(made[0].decision_id)
    assert superseded is not None and superseded.state is State.CANCELLED
    sent = capture_put_events()
    # When the stream's readers handle their records (publishing, then counting)
    assert drain_stream(aws) == [OK, OK]
    # Then each was published with the Source, DetailType and Detail the decide path published, byte for
    # byte: each decision in the state it was committed in, then the superseded survey as cancelled
    bus = aws.names["GovernorBus"]
    expected = [publisher.entry(bus, d) for d in (*made, newer.decision, superseded)]
    key = ("EventBusName", "Source", "DetailType", "Detail")
    assert sorted(tuple(e[k] for k in key) for e in sent) == sorted(tuple(e[k] for k in key) for e in expected)


def test_admin_and_outcome_records_and_changes_of_nothing_publish_and_count_nothing(aws: Any, outbound: Any) -> None:
    # Given a decided survey, published and counted
    put_events(aws, [detail(event_id="e-1", interaction_id="i-1", customer_id="c-1", closed_at=NOW.isoformat())])
    drain(aws)
    assert len(outbound()) == 1
    before = counted()
    # When an admin action is logged, and the decision's entry is touched without a state change
    (entry,) = log_items(aws)
    dynamodb, table = boto3.client("dynamodb"), aws.names["DecisionLogTable"]
    record = decision_log.admin_record(
        "c-1", "opt_out", actor="ops", at=NOW, details={"survey": True}, retention=timedelta(days=400)
    )
    dynamodb.put_item(TableName=table, Item=record)
    dynamodb.update_item(
        TableName=table,
        Key=decision_log.key(entry["decision_id"]),
        UpdateExpression="SET note = :n",
        ExpressionAttributeValues={":n": {"S": "touched"}},
    )
    # Then the stream's readers handle both records and publish and count nothing
    assert drain_stream(aws) == [OK, OK]
    assert outbound() == []
    assert counted() == before


# ---- a decision nobody redelivers --------------------------------------------------------------


def via_connect(event: dict[str, Any]) -> Any:
    from functions.decide_api.app import handler

    parameters = {k: str(v) for k, v in event.items()}
    flow = {"Name": "ContactFlowEvent", "Details": {"ContactData": {"ContactId": "c-1"}, "Parameters": parameters}}
    return handler(flow, LambdaContext("decide-api"))


def via_post_decide(event: dict[str, Any]) -> Any:
    from functions.decide_api.app import handler

    answer = handler(api_gateway_event("POST", "/decide", body=json.dumps(event)), LambdaContext("decide-api"))
    return answer["statusCode"], json.loads(answer["body"])


@pytest.mark.parametrize("send", [via_connect, via_post_decide], ids=["amazon-connect", "post-decide"])
def test_a_decision_whose_caller_died_after_the_commit_is_published_and_counted_once(
    aws: Any, outbound: Any, send: Callable[[dict[str, Any]], Any]
) -> None:
    # Given a callback decided synchronously by a process that died right after the commit, and no retry
    def die(name: str) -> None:
        if name == faults.AFTER_COMMIT:
            raise Crash(name)

    faults.install(die)
    with pytest.raises(Crash):
        send(detail(event_id="evt-ob", interaction_id="int-ob", customer_id="cust-ob", outcome="unresolved"))
    faults.install(None)
    (decision,) = log_items(aws)
    # Then the log stream function publishes it once, exactly as logged, and counts it once
    published = outbound()
    assert [(e["detail-type"], e["detail"]) for e in published] == [("FollowUpApproved", decision)]
    assert counted() == {"total": 1, "a_callback": 1}
    # And handling the stream again finds nothing new
    assert drain_stream(aws) == []
    assert outbound() == []
    assert counted() == {"total": 1, "a_callback": 1}


# ---- counting exactly once ----------------------------------------------------------------------


def ten_decided(aws: Any) -> list[dict[str, Any]]:
    """Ten events of five customers decided through the queue; their log records, not yet handled."""
    outcomes = ["resolved", "unresolved", "abandoned", "escalated", "resolved"]
    events = [
        detail(event_id=f"e-{n}", interaction_id=f"i-{n}", customer_id=f"c-{n % 5}", outcome=outcomes[n % 5])
        for n in range(10)
    ]
    put_events(aws, events)
    assert handle_batch(aws)[1] == {"batchItemFailures": []}
    records = stream_records(aws)
    assert [r["eventName"] for r in records].count("INSERT") == 10
    return records


def test_a_batch_handed_again_from_its_first_record_is_not_counted_again(aws: Any) -> None:
    # Given ten decisions' log records counted as one batch
    records = ten_decided(aws)
    assert count(aws, records) == OK
    first = counted()
    assert first["total"] == 10
    # When Lambda hands the same batch again (the invocation timed out after counting), and then once
    # more with records committed since appended to it (a retried batch may be longer)
    assert count(aws, records) == OK
    put_events(aws, [detail(event_id="e-late", interaction_id="i-late", customer_id="c-late")])
    handle_batch(aws)
    longer = stream_records(aws)
    assert len(longer) > len(records)
    assert count(aws, longer) == OK
    # Then each decision is counted once: only the appended record was added
    decided = Counter(f"a_{d['action']}" for d in log_items(aws))
    assert counted() == {"total": 11, **decided}
    assert sum(decided.values()) == 11


def test_a_batch_handed_again_shorter_than_counted_hands_the_rest_on_to_the_next_batch(aws: Any) -> None:
    # Given ten decisions' log records counted as one batch whose answer was lost (a timeout)
    records = ten_decided(aws)
    assert count(aws, records) == OK
    pages_before = page_rows()
    # When Lambda hands the batch again shorter (its batch size lowered meanwhile): the first four
    assert count(aws, records[:4]) == OK
    # And then the batch that follows them, the other six and one decided since
    put_events(aws, [detail(event_id="e-late", interaction_id="i-late", customer_id="c-late")])
    handle_batch(aws)
    after = stream_records(aws)[4:]
    assert len(after) == 7
    assert count(aws, after) == OK
    # Then each decision is counted once, and listed once: only the late one was added
    assert counted()["total"] == 11
    assert len(page_rows()) == len(pages_before) + 1


def test_a_count_transaction_cancelled_for_a_reason_no_retry_mends_fails_at_once(aws: Any) -> None:
    # Given ten decisions' log records, and DynamoDB cancelling the counting transaction as invalid
    from botocore.exceptions import ClientError

    records = ten_decided(aws)
    tries: list[int] = []

    def invalid(**_: Any) -> None:
        tries.append(1)
        raise ClientError(
            {
                "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                "CancellationReasons": [{"Code": "None"}, {"Code": "ValidationError", "Message": "too large"}],
            },
            "TransactWriteItems",
        )

    aws_clients.client("dynamodb").meta.events.register("before-call.dynamodb.TransactWriteItems", invalid)
    # When the log count function handles them
    with pytest.raises(ClientError):
        count(aws, records)
    # Then it failed on the first try (the invocation errs, its alarm fires) instead of backing off
    # and retrying as if DynamoDB were busy; nothing was counted
    assert len(tries) == 1
    assert counted() == {}


def page_rows() -> list[Any]:
    """Every row of every day page around NOW, repeats included (the readers drop repeats)."""
    from shared.adapters import day_pages

    rows: list[Any] = []
    table = wiring.stats().stats_table
    for item in boto3.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]:
        if item["day"]["S"].startswith(day_pages.PAGE_DAY_PREFIX):
            rows += day_pages.rows_of_page(item)
    return rows


def dynamodb_requests() -> list[str]:
    """The operations the product's own DynamoDB client sends, in order (botocore's event hooks)."""
    sent: list[str] = []

    def remember(model: Any, **_: Any) -> None:
        sent.append(model.name)

    aws_clients.client("dynamodb").meta.events.register("before-call.dynamodb", remember)
    return sent


def test_a_new_batch_is_counted_with_one_transaction_and_its_receipt_is_read_only_when_handed_again(
    aws: Any,
) -> None:
    # Given ten decisions' log records, and the requests of the product's DynamoDB client watched
    records = ten_decided(aws)
    sent = dynamodb_requests()
    # When the log count function handles them as one new batch
    assert count(aws, records) == OK
    # Then it counted them with one transaction and read no receipt
    assert sent == ["TransactWriteItems"]
    assert counted()["total"] == 10
    # When Lambda hands the same batch again (the invocation timed out after counting)
    sent.clear()
    assert count(aws, records) == OK
    # Then the transaction's condition failed, the receipt was read once, and nothing was added
    assert sent == ["TransactWriteItems", "GetItem"]
    assert counted()["total"] == 10


def test_a_partly_refused_put_events_restarts_publishing_at_the_refused_record_and_counting_goes_on(
    aws: Any, outbound: Any
) -> None:
    # Given ten decisions' log records, and EventBridge refusing the entry of the fourth one
    records = ten_decided(aws)
    refused = records[3]["dynamodb"]["NewImage"]["decision_id"]["S"]
    refusing = refuse_entries_of(refused)
    # When the stream's readers handle them
    published, counting = drain_stream(aws)
    # Then publishing reports the fourth record (Lambda restarts that reader there), and the others
    # were published all the same, the refused one not
    assert published == {"batchItemFailures": [{"itemIdentifier": sequence(records[3])}]}
    assert refused not in {e["detail"]["decision_id"] for e in outbound()}
    # And counting, the other reader, does not wait for publishing: all ten are counted
    assert counting == OK
    assert counted()["total"] == 10
    # When EventBridge takes it again and Lambda retries publishing from the reported record
    refusing["on"] = False
    assert drain_stream(aws) == [OK]
    # Then the refused one is published, and nothing is counted twice
    assert refused in {e["detail"]["decision_id"] for e in outbound()}
    assert counted()["total"] == 10


def test_two_attempts_at_one_batch_racing_count_it_once(aws: Any) -> None:
    # Given ten decisions' log records, and a second attempt at their batch that finishes just before
    # the first one sends its counting transaction (a timed-out attempt still running)
    records = ten_decided(aws)
    raced = {"done": False}

    def second_attempt(**_: Any) -> None:
        if not raced["done"]:
            raced["done"] = True
            assert count(aws, records) == OK

    aws_clients.client("dynamodb").meta.events.register("before-call.dynamodb.TransactWriteItems", second_attempt)
    # When the first attempt goes on to count
    assert count(aws, records) == OK
    # Then its receipt condition failed, it read the receipt again and added nothing: counted once
    assert raced["done"]
    assert counted()["total"] == 10


def test_supersessions_and_releases_are_counted_once_however_often_the_stream_is_read(aws: Any) -> None:
    from tests.integration.test_release import fire

    # Given a held survey superseded by the customer's next interaction, whose survey is released at its time
    put_events(aws, [detail(event_id="e-1", interaction_id="i-1", customer_id="c-1", closed_at=NOW.isoformat())])
    handle_batch(aws)
    drain_dying_once_after_each_count(aws)  # its release is scheduled before the next interaction
    later = NOW + timedelta(hours=1)
    wiring.use_clock(FixedClock(later))
    put_events(aws, [detail(event_id="e-2", interaction_id="i-2", customer_id="c-1", closed_at=later.isoformat())])
    handle_batch(aws)
    newer = next(d for d in log_items(aws) if d["event_id"] == "e-2")
    assert fire(newer["decision_id"], later + timedelta(hours=3))["changed"] is True
    # When the log count function dies after counting each batch, and Lambda hands each batch again
    crashes = drain_dying_once_after_each_count(aws)
    # Then each was retried once, and the decisions, the cancellation and the release are counted once,
    # on the days they happened
    assert crashes == 1  # one batch: the second decision, the first one's cancellation, the release
    once = counted()
    assert (once["total"], once["cancelled"], once["released"]) == (2, 1, 1)
    (day,) = wiring.stats().days(NOW.date(), NOW.date())
    assert (day["cancelled_by_reason"], day["released_by_action"]) == (
        {"SUPERSEDED_BY_NEWER_INTERACTION": 1},
        {"survey": 1},
    )


def drain_dying_once_after_each_count(stack: Any) -> int:
    """Handles the log's stream with a count function that dies after counting each batch the first
    time it gets it; the poller hands the same batch again, as Lambda does. Returns how many times it
    died."""
    crashes = {"n": 0, "armed": True}

    def die(name: str) -> None:
        if name == faults.AFTER_COUNT:
            crashes["armed"] = not crashes["armed"]
            if not crashes["armed"]:
                crashes["n"] += 1
                raise Crash(name)

    faults.install(die)
    try:
        while True:
            try:
                assert all(a["batchItemFailures"] == [] for a in drain_stream(stack))
                return crashes["n"]
            except Crash:
                continue
    finally:
        faults.install(None)


def test_a_redelivered_queue_record_neither_publishes_nor_counts_again(aws: Any, outbound: Any) -> None:
    # Given an event decided, published and counted
    event = detail(event_id="e-1", interaction_id="i-1", customer_id="c-1")
    put_events(aws, [event])
    drain(aws)
    assert len(outbound()) == 1
    # When SQS delivers it again
    put_events(aws, [event])
    drain(aws)
    # Then it wrote nothing, so its stream carries nothing new: nothing published, nothing counted
    assert outbound() == []
    assert counted()["total"] == 1


# ---- the emulator: a cancelled transaction leaves no stream record ------------------------------


@pytest.mark.parametrize("speedups", [True, False], ids=["sped-up", "as-released"])
def test_a_cancelled_transaction_leaves_no_stream_record(aws: Any, speedups: bool) -> None:
    from dataclasses import replace

    from tests.integration.test_release import RETENTION, SEND_AT, commit, decision, fire

    # Given a held survey, released, and a ledger read that (wrongly) still shows it pending
    held = decision("evt-held")
    stale = commit(held)
    fire(held.decision_id, SEND_AT)
    before = stream_records(aws)
    store = wiring.store()
    current = store.load(["cust-1"])["cust-1"]
    pretending = replace(current, followups=stale.followups)
    newer = decision("evt-newer", supersedes=(held.decision_id,))
    # When a decision superseding it is committed: the ledger update and the new log entry pass, and
    # the held entry's `state = pending` condition, the transaction's last item, cancels it all
    with moto_speedups.removed() if not speedups else contextlib.nullcontext():
        outcome = store.commit(newer, pretending, pretending.after(newer, RETENTION, SEND_AT), SEND_AT)
    # Then nothing was written (the store answers with the ledger as the log tells it: released)
    assert isinstance(outcome, LedgerStale)
    assert not outcome.current.find(held.decision_id).pending  # type: ignore[union-attr]
    # And the stream holds no record of it (the emulator's item-level rollback truncates the stream too)
    assert stream_records(aws) == before
    assert store.get_decision(newer.decision_id) is None


def test_a_batch_failing_every_retry_is_described_in_the_dead_letter_queue_and_the_shard_moves_on(
    aws: Any, outbound: Any
) -> None:
    # Given two decisions, and EventBridge refusing the second one's entry for good
    put_events(aws, [detail(event_id=f"e-{n}", interaction_id=f"i-{n}", customer_id=f"c-{n}") for n in range(2)])
    handle_batch(aws)
    records = stream_records(aws)
    refuse_entries_of(records[1]["dynamodb"]["NewImage"]["decision_id"]["S"])
    poller = log_stream(aws).poller("LogStreamFunction")
    # When Lambda's event source mapping tries the batch, then retries it as often as the template allows
    for _ in range(poller.source.retries + 1):
        (answer,) = poller.drain(give_up_after_retries=True)
        assert answer["batchItemFailures"] == [{"itemIdentifier": sequence(records[1])}]
    # Then the rest of the batch is described in the log stream's dead-letter queue (shard and range,
    # and which function gave up), for an operator to replay once the cause is fixed
    sqs = boto3.client("sqs")
    (message,) = sqs.receive_message(QueueUrl=aws.urls["LogStreamDeadLetterQueue"]).get("Messages", [])
    body = json.loads(message["Body"])
    info = body["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (sequence(records[1]), sequence(records[1]))
    assert body["requestContext"]["functionArn"].endswith("LogStreamFunction")
    # And the shard moves on: what is committed next is published, and all three are counted once
    put_events(aws, [detail(event_id="e-next", interaction_id="i-next", customer_id="c-next")])
    handle_batch(aws)
    assert poller.drain(give_up_after_retries=True) == [OK]
    assert "e-next" in {e["detail"]["event_id"] for e in outbound()}
    assert all(a == OK for a in drain_stream(aws))
    assert counted()["total"] == 3
