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


def preferences_call(method: str, customer_id: str, body: Any = None, if_match: str | None = None) -> Any:
    """The admin API's answer (status, body, headers) to a GET or PUT of a customer's opt-outs."""
    from functions.admin_api.app import handler

    headers = {"Content-Type": "application/json", "X-Governor-Author": "sam"}
    if if_match is not None:
        headers["If-Match"] = if_match
    event = api_gateway_event(
        method,
        f"/customers/{customer_id}/preferences",
        resource="/customers/{customer_id}/preferences",
        path_parameters={"customer_id": customer_id},
        headers=headers,
        body=json.dumps(body) if body is not None else None,
    )
    answer = handler(event, LambdaContext("admin-api"))
    headers = {k: v[0] for k, v in (answer.get("multiValueHeaders") or {}).items()}
    return answer["statusCode"], json.loads(answer["body"]), {**headers, **(answer.get("headers") or {})}


def test_a_change_sent_with_the_etag_it_saw_is_refused_once_someone_else_changed_the_opt_outs(
    aws: Any, admin_api: None
) -> None:
    # Given an admin who read a customer's opt-outs (none) and their ETag
    status, seen, headers = preferences_call("GET", "phone-1")
    assert (status, seen["opt_outs"]) == (200, [])
    tag = headers["ETag"]
    # And another admin who then opts the customer out of callbacks
    status, _, after = preferences_call("PUT", "phone-1", {"callback": True, "source": "ivr"})
    assert status == 200 and after["ETag"] != tag
    # When the first admin sends their survey opt-out based on what they saw
    status, body, _ = preferences_call("PUT", "phone-1", {"survey": True, "source": "call 7"}, if_match=tag)
    # Then 412 VERSION_CONFLICT telling them to read again, and nothing of theirs is written
    assert (status, body["code"]) == (412, "VERSION_CONFLICT"), body
    assert "GET them again" in body["message"]
    assert [o.kind for o in ledger_of(aws, "phone-1").opt_outs] == ["callback"]
    assert len(admin_records(aws, "phone-1")) == 1
    # When they read again and resend with the new ETag
    _, now_seen, headers = preferences_call("GET", "phone-1")
    assert headers["ETag"] == after["ETag"] and [o["kind"] for o in now_seen["opt_outs"]] == ["callback"]
    status, body, changed = preferences_call(
        "PUT", "phone-1", {"survey": True, "source": "call 7"}, if_match=headers["ETag"]
    )
    # Then the change is made, and its answer carries the ETag a read now gives
    assert (status, [o["kind"] for o in body["opt_outs"]]) == (200, ["callback", "survey"])
    assert changed["ETag"] == preferences_call("GET", "phone-1")[2]["ETag"]


def test_a_decision_taken_meanwhile_is_no_conflict_and_a_change_already_made_is_no_conflict(
    aws: Any, admin_api: None
) -> None:
    # Given an admin who read a customer's opt-outs and their ETag
    _, _, headers = preferences_call("GET", "phone-2")
    tag = headers["ETag"]
    # And a survey decided for that customer meanwhile (the ledger's version moves, its opt-outs do not)
    store = DynamoStore(aws.names["LedgerTable"], aws.names["DecisionLogTable"], RETENTION)
    event = InteractionClosed.model_validate(detail(event_id="e-1", interaction_id="i-1", customer_id="phone-2"))
    assert Governor(store, clock=FixedClock(NOW)).decide(event).decision.action == "survey"
    assert ledger_of(aws, "phone-2").version == 1
    # When the admin sends a change with the ETag they saw (weak form, as some clients send it)
    status, body, first = preferences_call("PUT", "phone-2", {"survey": True, "source": "call 8"}, if_match=f"W/{tag}")
    # Then it is made: a follow-up sent is not a change of the opt-outs
    assert (status, [o["kind"] for o in body["opt_outs"]]) == (200, ["survey"])
    # When the same request is retried with the same, now stale, ETag (its answer was lost)
    status, again, second = preferences_call("PUT", "phone-2", {"survey": True, "source": "call 8"}, if_match=tag)
    # Then the answer is the same: what was wanted holds, nothing is written twice
    assert (status, again, second["ETag"]) == (200, body, first["ETag"])
    assert len(admin_records(aws, "phone-2")) == 1
    # And If-Match: * sets whatever the opt-outs are
    status, body, _ = preferences_call("PUT", "phone-2", {"callback": True, "source": "call 9"}, if_match="*")
    assert (status, [o["kind"] for o in body["opt_outs"]]) == (200, ["callback", "survey"])


@pytest.mark.server
def test_two_admins_changing_the_opt_outs_they_both_saw_at_once_one_is_told_of_the_other(moto_server: Any) -> None:
    # Given two admins on the phone who read the same customer's opt-outs (none), and the same ETag
    from shared.adapters.preferences import etag
    from shared.domain.errors import VersionConflict

    preferences = Preferences(moto_server.names["LedgerTable"], moto_server.names["DecisionLogTable"], RETENTION)
    seen = etag(preferences.get("both").opt_outs)
    everyone_reads_before_anyone_writes(2)

    # When both send their change based on it at the same instant
    def change(kind: str) -> str:
        try:
            preferences.set("both", {kind: True}, f"call about {kind}", f"admin-{kind}", NOW, if_match=seen)
        except VersionConflict:
            return "conflict"
        return "made"

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(change, ["survey", "callback"]))
    # Then exactly one change is made, and the other admin is told (412), never silently merged or lost
    assert sorted(outcomes) == ["conflict", "made"]
    made = ["survey", "callback"][outcomes.index("made")]
    assert [o.kind for o in ledger_of(moto_server, "both").opt_outs] == [made]
    assert len(admin_records(moto_server, "both")) == 1
