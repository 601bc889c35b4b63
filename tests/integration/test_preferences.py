"""Opt-outs: concurrent admins lose no change, the very next decision honours one, and a change
takes strict booleans. Concurrency runs against moto in server mode (real HTTP, shared state);
the API is called through its handler with API Gateway events."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import boto3
import pytest

from infra.lambda_runtime import LambdaContext, api_gateway_event
from shared import wiring
from shared.adapters import aws as aws_clients
from shared.adapters import decision_log
from shared.adapters.clock import FixedClock
from shared.adapters.preferences import Preferences
from shared.adapters.store import DynamoStore
from shared.domain.events import InteractionClosed
from shared.usecases.decide import Governor
from tests.conftest import NOW, detail, ledger_of

RETENTION = timedelta(days=400)


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto in server mode with DynamoDB's per-request atomicity (infra/local/emulator.py)."""
    from infra.local import emulator
    from infra.local.provision import provision

    server, endpoint = emulator.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    aws_clients.reset_clients()
    try:
        yield provision(boto3.Session(region_name="us-east-1"))
    finally:
        server.stop()
        aws_clients.reset_clients()


def everyone_reads_before_anyone_writes(parties: int) -> None:
    """Holds each thread's first GetItem answer until every admin has read: the interleaving in
    which a read-modify-write of the whole opt-out map loses all changes but one."""
    barrier = threading.Barrier(parties, timeout=20)
    seen = threading.local()

    def hold(**_: Any) -> None:
        if not getattr(seen, "read", False):
            seen.read = True
            barrier.wait()

    aws_clients.client("dynamodb").meta.events.register("after-call.dynamodb.GetItem", hold)


def admin_records(stack: Any, customer_id: str) -> list[dict[str, Any]]:
    items = boto3.client("dynamodb").scan(TableName=stack.names["DecisionLogTable"], ConsistentRead=True)["Items"]
    docs = [json.loads(i["doc"]["S"]) for i in items if decision_log.is_admin_record(i)]
    return [d for d in docs if d["customer_id"] == customer_id]


def replays_as_a_chain(records: list[dict[str, Any]], start: list[str], end: list[str]) -> bool:
    """True if the audit records, in some order, lead from `start` to `end`, each record's
    `before` being the previous one's `after`: no change is shown that did not happen as shown."""
    remaining, state = list(records), sorted(start)
    while remaining:
        step = next((r for r in remaining if r["details"]["before"] == state), None)
        if step is None:
            return False
        remaining.remove(step)
        state = step["details"]["after"]
    return state == sorted(end)


@pytest.mark.server
def test_concurrent_survey_and_callback_opt_outs_both_survive(moto_server: Any) -> None:
    # Given five customers, and for each two admins who opt them out of surveys and of callbacks at once
    preferences = Preferences(moto_server.names["LedgerTable"], moto_server.names["DecisionLogTable"], RETENTION)
    changes = [(f"cust-{n}", kind) for n in range(5) for kind in ("survey", "callback")]
    everyone_reads_before_anyone_writes(len(changes))

    # When all ten changes are made at the same instant
    def change(customer_and_kind: tuple[str, str]) -> None:
        customer_id, kind = customer_and_kind
        preferences.set(customer_id, {kind: True}, f"call about {kind}", f"admin-{kind}", NOW)

    with ThreadPoolExecutor(max_workers=len(changes)) as pool:
        list(pool.map(change, changes))

    # Then every customer holds both opt-outs, and each change bumped the version once
    for n in range(5):
        state = ledger_of(moto_server, f"cust-{n}")
        assert [o.kind for o in state.opt_outs] == ["callback", "survey"], f"cust-{n}"
        assert state.version == 2
        # And the audit log tells the story as it happened: two changes, one after the other
        records = admin_records(moto_server, f"cust-{n}")
        assert len(records) == 2
        assert replays_as_a_chain(records, [], ["callback", "survey"])


@pytest.mark.server
def test_concurrent_sets_and_lifts_of_every_kind_all_survive(moto_server: Any) -> None:
    # Given a customer opted out of surveys and of everything
    preferences = Preferences(moto_server.names["LedgerTable"], moto_server.names["DecisionLogTable"], RETENTION)
    preferences.set("mixed", {"survey": True, "all": True}, "letter", "admin-0", NOW)
    before = ledger_of(moto_server, "mixed").version
    # When three admins at once lift the survey opt-out, add a callback opt-out and lift "all"
    changes: list[dict[str, bool]] = [{"survey": False}, {"callback": True}, {"all": False}]
    everyone_reads_before_anyone_writes(len(changes))
    with ThreadPoolExecutor(max_workers=len(changes)) as pool:
        list(pool.map(lambda wanted: preferences.set("mixed", wanted, "call", "admin", NOW), changes))
    # Then only the callback opt-out is left, after exactly three more versions
    state = ledger_of(moto_server, "mixed")
    assert [o.kind for o in state.opt_outs] == ["callback"]
    assert state.version == before + 3
    records = [r for r in admin_records(moto_server, "mixed") if r["actor"] == "admin"]
    assert len(records) == 3 and replays_as_a_chain(records, ["all", "survey"], ["callback"])


@pytest.mark.server
def test_an_opt_out_set_while_a_decider_holds_an_older_read_is_honoured_by_that_decision(moto_server: Any) -> None:
    # Given a decider that has read the customer's ledger (with a survey already sent long ago:
    # decided 3 h after its interaction closed, so released at once rather than held by the delay)
    store = DynamoStore(moto_server.names["LedgerTable"], moto_server.names["DecisionLogTable"], RETENTION)
    preferences = Preferences(moto_server.names["LedgerTable"], moto_server.names["DecisionLogTable"], RETENTION)
    closed_at = NOW - timedelta(days=90, hours=3)
    old = InteractionClosed.model_validate(
        detail(event_id="old", interaction_id="old", customer_id="late", closed_at=closed_at.isoformat())
    )
    assert Governor(store, clock=FixedClock(NOW - timedelta(days=90))).decide(old).decision.action == "survey"
    governor = Governor(store, clock=FixedClock(NOW))
    governor.prefetch(["late"])
    # When an admin opts the customer out of surveys before that decider commits
    preferences.set("late", {"survey": True}, "complaint", "admin", NOW)
    # Then the decider's commit fails its condition, it decides again on the fresh ledger: OPTED_OUT
    event = InteractionClosed.model_validate(detail(event_id="new", interaction_id="new", customer_id="late"))
    decision = governor.decide(event).decision
    assert (decision.action, decision.reasons[0]) == ("none", "OPTED_OUT")
    # And the opt-out did not drop the survey the ledger already held
    assert [f.kind for f in ledger_of(moto_server, "late").followups] == ["survey"]


@pytest.fixture
def admin_api(aws: Any) -> None:
    os.environ.update(aws.environment("AdminApiFunction"))
    wiring.reset()
    wiring.use_clock(FixedClock(NOW))


def put_preferences(customer_id: str, body: Any) -> tuple[int, Any]:
    from functions.admin_api.app import handler

    event = api_gateway_event(
        "PUT",
        f"/customers/{customer_id}/preferences",
        resource="/customers/{customer_id}/preferences",
        path_parameters={"customer_id": customer_id},
        headers={"Content-Type": "application/json", "X-Governor-Author": "sam"},
        body=json.dumps(body),
    )
    answer = handler(event, LambdaContext("admin-api"))
    return answer["statusCode"], json.loads(answer["body"])


@pytest.mark.parametrize("kind", ["survey", "callback", "all"])
@pytest.mark.parametrize("value", ["yes", "off", "true", "false", 1, 0, "1", [], {}])
def test_an_opt_out_is_a_strict_boolean(aws: Any, admin_api: None, kind: str, value: Any) -> None:
    # Given a customer with no opt-out
    # When an admin sends something that is not true or false for a kind
    status, body = put_preferences("cust-9", {kind: value, "source": "call 1"})
    # Then 400 naming the field, saying what to send, and nothing changed
    assert status == 400, body
    assert body["code"] == "INVALID_INPUT"
    assert [f["field"] for f in body["fields"]] == [kind]
    assert "boolean" in body["fields"][0]["message"].lower()
    assert ledger_of(aws, "cust-9").opt_outs == ()


def test_true_sets_false_lifts_and_a_repeated_change_records_nothing_twice(aws: Any, admin_api: None) -> None:
    # Given a customer opted out of surveys and callbacks through the API
    status, body = put_preferences("cust-10", {"survey": True, "callback": True, "source": "call 1"})
    assert (status, [o["kind"] for o in body["opt_outs"]]) == (200, ["callback", "survey"])
    version = ledger_of(aws, "cust-10").version
    # When the same request is sent again (a client retry)
    status, again = put_preferences("cust-10", {"survey": True, "callback": True, "source": "call 1"})
    # Then the answer is the same and nothing more is written: no new version, no second audit entry
    assert (status, again) == (200, body)
    assert ledger_of(aws, "cust-10").version == version
    assert len(admin_records(aws, "cust-10")) == 1
    # And false lifts one, leaving the other
    status, body = put_preferences("cust-10", {"survey": False, "source": "call 2"})
    assert (status, [o["kind"] for o in body["opt_outs"]]) == (200, ["callback"])


def test_a_change_that_keeps_losing_its_race_answers_503_and_writes_nothing(
    aws: Any, admin_api: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a customer opted out of surveys, whose ledger a busy decider changes before each of our writes
    import shared.adapters.preferences as preferences_module

    monkeypatch.setattr(preferences_module, "BACKOFF_SECONDS", 0.0)
    assert put_preferences("busy", {"survey": True, "source": "call 1"})[0] == 200
    table = aws.names["LedgerTable"]

    def decider_commits_first(**_: Any) -> None:
        boto3.client("dynamodb").update_item(
            TableName=table,
            Key={"customer_id": {"S": "busy"}},
            UpdateExpression="SET version = version + :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )

    events = aws_clients.client("dynamodb").meta.events
    events.register("before-call.dynamodb.TransactWriteItems", decider_commits_first)
    try:
        # When an admin opts the customer out of callbacks too
        status, body = put_preferences("busy", {"callback": True, "source": "call 2"})
    finally:
        events.unregister("before-call.dynamodb.TransactWriteItems", decider_commits_first)
    # Then 503 TRY_AGAIN (worth sending again), and no half-change: opt-outs as before, one audit entry
    assert (status, body["code"]) == (503, "TRY_AGAIN"), body
    assert [o.kind for o in ledger_of(aws, "busy").opt_outs] == ["survey"]
    assert len(admin_records(aws, "busy")) == 1
    # And once the decider is quiet, the same change goes through
    status, body = put_preferences("busy", {"callback": True, "source": "call 2"})
    assert (status, [o["kind"] for o in body["opt_outs"]]) == (200, ["callback", "survey"])
    # And that answer is what a read answers
    from functions.admin_api.app import handler

    event = api_gateway_event(
        "GET",
        "/customers/busy/preferences",
        resource="/customers/{customer_id}/preferences",
        path_parameters={"customer_id": "busy"},
    )
    assert json.loads(handler(event, LambdaContext("admin-api"))["body"]) == body
