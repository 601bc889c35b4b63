"""The admin API through its handler with API Gateway events, on moto."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import urllib.parse
from datetime import timedelta
from typing import Any

import boto3
import pytest

from infra.lambda_runtime import LambdaContext, api_gateway_event
from shared import wiring
from shared.adapters import decision_log
from shared.adapters.clock import FixedClock
from shared.adapters.log_queries import DecisionQuery
from shared.domain import engine
from shared.domain.contacts import ContactLedger
from shared.domain.decision import Decision, RuleCheck
from shared.domain.events import InteractionClosed
from shared.domain.policy import default_policy
from tests.conftest import NOW, detail, drain, drain_stream, put_events

ROUTES = {
    "/decisions/export": "/decisions/export",
    "/decisions/": "/decisions/{decision_id}",
    "/customers/": None,
}


@pytest.fixture(autouse=True)
def admin_environment(aws: Any) -> None:
    for function in ("AdminApiFunction", "DecideFunction"):
        os.environ.update(aws.environment(function))
    wiring.reset()
    wiring.use_clock(FixedClock(NOW))


def call(method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
    from functions.admin_api.app import handler

    route, _, query = path.partition("?")
    resource, params = route, None
    if route.startswith("/decisions/") and route != "/decisions/export":
        resource, params = "/decisions/{decision_id}", {"decision_id": route.rsplit("/", 1)[1]}
    elif route.startswith("/customers/"):
        _, _, customer, tail = route.split("/", 3)
        resource, params = f"/customers/{{customer_id}}/{tail}", {"customer_id": customer}
    event = api_gateway_event(
        method,
        route,
        resource=resource,
        path_parameters=params,
        query=urllib.parse.parse_qs(query),
        body=json.dumps(body) if body is not None else None,
    )
    answer = handler(event, LambdaContext("admin-api"))
    headers = {k: v[0] for k, v in (answer.get("multiValueHeaders") or {}).items()} | (answer.get("headers") or {})
    text = answer["body"]
    content = headers.get("Content-Type", "")
    return answer["statusCode"], headers, json.loads(text) if "json" in content and "ndjson" not in content else text


def seed(aws: Any, count: int, customers: int, span: timedelta, days: bool = True) -> list[str]:
    """`count` real decisions (from the engine) logged over `span` before NOW, written in bulk, and
    (`days`) the log's stream handled: a time range lists what the log stream function put on the
    day pages; reads by customer or by id need no more than the entries."""
    client = boto3.client("dynamodb")
    ids, items = [], []
    for n in range(count):
        at = NOW - span + span * n / count
        event = InteractionClosed.model_validate(
            detail(
                event_id=f"seed-{n}",
                interaction_id=f"seed-i{n}",
                customer_id=f"c-{n % customers}",
                outcome=["resolved", "unresolved", "abandoned"][n % 3],
                closed_at=(at - timedelta(minutes=1)).isoformat(),
            )
        )
        decision = engine.decide(event, ContactLedger(event.customer_id), default_policy(), at)
        ids.append(decision.decision_id)
        items.append({"PutRequest": {"Item": decision_log.to_item(decision, timedelta(days=400))}})
    for start in range(0, len(items), 25):
        client.batch_write_item(RequestItems={aws.names["DecisionLogTable"]: items[start : start + 25]})
    if days:
        drain_stream(aws)
    return ids


def every_page(path: str, limit: int) -> list[str]:
    seen, token = [], None
    while True:
        suffix = f"&next_token={urllib.parse.quote(token)}" if token else ""
        status, _, page = call("GET", f"{path}&limit={limit}{suffix}")
        assert status == 200, page
        seen += [d["decision_id"] for d in page["items"]]
        times = [d["decided_at"] for d in page["items"]]
        assert times == sorted(times, reverse=True)
        token = page["next_token"]
        if not token:
            return seen


def test_a_time_range_over_more_than_1000_decisions_pages_each_exactly_once(aws: Any) -> None:
    ids = seed(aws, 1200, customers=300, span=timedelta(days=5))
    start, end = (NOW - timedelta(days=6)).isoformat(), NOW.isoformat()
    seen = every_page(f"/decisions?from={urllib.parse.quote(start)}&to={urllib.parse.quote(end)}", limit=97)
    assert len(seen) == len(set(seen)) == 1200
    assert set(seen) == set(ids)


def test_a_customer_history_pages_each_decision_exactly_once_newest_first(aws: Any) -> None:
    ids = seed(aws, 1050, customers=1, span=timedelta(days=300), days=False)
    seen = every_page("/decisions?customer_id=c-0", limit=100)
    assert seen == list(reversed(ids))


def test_filters_by_action_and_reason_apply_to_both_query_kinds(aws: Any) -> None:
    seed(aws, 90, customers=3, span=timedelta(days=2))
    start = urllib.parse.quote((NOW - timedelta(days=3)).isoformat())
    _, _, by_reason = call("GET", f"/decisions?from={start}&to=2026-11-23&reason=ABANDONED_INTERACTION&limit=500")
    assert len(by_reason["items"]) == 30
    assert {d["reasons"][0] for d in by_reason["items"]} == {"ABANDONED_INTERACTION"}
    _, _, callbacks = call("GET", "/decisions?customer_id=c-1&action=callback&limit=500")
    assert callbacks["items"] and {d["action"] for d in callbacks["items"]} == {"callback"}


def test_a_reason_query_pages_the_day_index_newest_first_as_the_unfiltered_range_orders_it(aws: Any) -> None:
    # Given decisions of three reasons over three days (the day index, no reason index: a reason is a
    # filter on it, which DynamoDB applies after each page's Limit)
    seed(aws, 240, customers=40, span=timedelta(days=3))
    start, end = urllib.parse.quote((NOW - timedelta(days=4)).isoformat()), urllib.parse.quote(NOW.isoformat())
    everything = f"/decisions?from={start}&to={end}"
    # When the range is read by reason in small pages, and whole without a filter
    by_reason = every_page(f"{everything}&reason=ABANDONED_INTERACTION", limit=7)
    _, _, whole = call("GET", f"{everything}&limit=500")
    # Then the reason's pages hold exactly its decisions, each once, in the unfiltered range's order
    wanted = [d["decision_id"] for d in whole["items"] if d["reasons"][0] == "ABANDONED_INTERACTION"]
    assert len(wanted) == 80
    assert by_reason == wanted


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("/decisions?reason=NOT_A_REASON&customer_id=c-1", "query.reason"),
        ("/decisions?from=2026-11-10&to=2026-11-01", "from"),
        ("/decisions?from=2016-01-01&to=2026-01-01", "from"),
        ("/decisions", "customer_id"),
        ("/decisions?customer_id=c-1&next_token=garbage", "next_token"),
        ("/decisions?customer_id=someone@example.com", "customer_id"),
        ("/decisions?from=yesterday&to=2026-11-01", "from"),
    ],
)
def test_bad_queries_are_refused_with_a_message_that_says_what_to_change(query: str, field: str) -> None:
    status, _, body = call("GET", query)
    assert status == 400
    assert field in [f["field"] for f in body["fields"]]
    assert body["message"]


def test_a_token_from_another_query_is_refused(aws: Any) -> None:
    seed(aws, 30, customers=1, span=timedelta(days=1), days=False)
    _, _, page = call("GET", "/decisions?customer_id=c-0&limit=5")
    status, _, _ = call(
        "GET", f"/decisions?customer_id=c-1&limit=5&next_token={urllib.parse.quote(page['next_token'])}"
    )
    assert status == 400


def test_one_decision_is_served_whole_and_an_unknown_id_is_404(aws: Any) -> None:
    ids = seed(aws, 3, customers=1, span=timedelta(days=1), days=False)
    status, _, decision = call("GET", f"/decisions/{ids[1]}")
    assert status == 200
    assert decision["decision_id"] == ids[1]
    assert decision["input"]["channel"] == "phone" and decision["explanation"] and "policy_version" in decision
    assert call("GET", "/decisions/dcn_nothere")[0] == 404


def test_an_opt_out_set_through_the_api_suppresses_the_next_event(aws: Any) -> None:
    # Given a customer who tells support "do not survey me again"
    status, _, prefs = call("PUT", "/customers/cust-7/preferences", {"survey": True, "source": "support call 42"})
    assert status == 200
    assert [(o["kind"], o["source"]) for o in prefs["opt_outs"]] == [("survey", "support call 42")]
    # When their next solved interaction closes
    put_events(aws, [detail(event_id="e-after", interaction_id="i-after", customer_id="cust-7")])
    drain(aws)
    # Then no survey: OPTED_OUT, and the admin action is in the customer's timeline
    _, _, page = call("GET", "/decisions?customer_id=cust-7")
    assert [(d["action"], d["reasons"][0]) for d in page["items"]] == [("none", "OPTED_OUT")]
    _, _, state = call("GET", "/customers/cust-7/contact-state")
    assert state["next_survey_allowed"] is None
    assert [e.get("action") for e in state["last_entries"]][:2] == ["none", "preferences_changed"]
    # And lifting it lets the next one through
    call("PUT", "/customers/cust-7/preferences", {"survey": False, "source": "customer changed their mind"})
    put_events(aws, [detail(event_id="e-later", interaction_id="i-later", customer_id="cust-7")])
    drain(aws)
    _, _, page = call("GET", "/decisions?customer_id=cust-7&action=survey")
    assert [d["event_id"] for d in page["items"]] == ["e-later"]


def test_preferences_need_a_kind_and_a_source() -> None:
    assert call("PUT", "/customers/cust-7/preferences", {"source": "x"})[0] == 400
    assert call("PUT", "/customers/cust-7/preferences", {"survey": True})[0] == 400
    assert call("GET", "/customers/cust-7/preferences")[2] == {"customer_id": "cust-7", "opt_outs": []}


def test_contact_state_shows_each_window_and_the_next_allowed_times(aws: Any) -> None:
    # Given a survey decided now
    put_events(aws, [detail(event_id="e-1", interaction_id="i-1", customer_id="cust-9")])
    drain(aws)
    # When an admin looks at the customer
    status, _, state = call("GET", "/customers/cust-9/contact-state")
    # Then the 30-day window holds one survey (held until its send time), full, and the next
    # survey is 30 days after that send time
    assert status == 200
    window = next(w for w in state["windows"] if w["kind"] == "survey" and w["window"] == "30 days")
    assert (window["count"], window["cap"]) == (1, 1)
    send_at = NOW - timedelta(hours=1) + timedelta(minutes=default_policy().survey_delay_minutes)
    assert state["next_survey_allowed"].startswith((send_at + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"))
    assert state["next_callback_allowed"].startswith(NOW.strftime("%Y-%m-%dT%H:%M"))
    assert [f["kind"] for f in state["recent_follow_ups"]] == ["survey"]


def test_stats_count_decisions_as_they_are_made_exactly_once(aws: Any) -> None:
    # Given decisions made through the queue, one of them delivered twice
    events = [
        detail(
            event_id=f"s-{n}",
            interaction_id=f"si-{n}",
            customer_id=f"sc-{n}",
            outcome=["resolved", "unresolved", "abandoned"][n % 3],
        )
        for n in range(9)
    ]
    put_events(aws, [*events, events[0]])
    drain(aws)
    # When an admin asks for the day's stats
    status, _, stats = call("GET", "/stats?from=2026-11-23&to=2026-11-23")
    # Then they come from the counters, with every decision counted once
    assert status == 200
    day = stats["days"][0]
    assert (day["total"], day["by_action"]) == (9, {"callback": 3, "none": 3, "survey": 3})
    assert day["by_reason"]["ABANDONED_INTERACTION"] == 3
    assert day["suppression_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert stats["total"]["total"] == 9


def test_stats_refuse_a_backwards_or_too_long_range() -> None:
    assert call("GET", "/stats?from=2026-11-23&to=2026-11-01")[0] == 400
    assert call("GET", "/stats?from=2016-11-23&to=2026-11-01")[0] == 400


@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
def test_an_export_streams_every_decision_of_a_range_in_pages(aws: Any, fmt: str) -> None:
    ids = seed(aws, 2100, customers=500, span=timedelta(days=3))
    start = urllib.parse.quote((NOW - timedelta(days=4)).isoformat())
    rows: list[dict[str, Any]] = []
    token, pages, header = None, 0, list[str]()
    while True:
        suffix = f"&next_token={urllib.parse.quote(token)}" if token else ""
        status, headers, body = call("GET", f"/decisions/export?from={start}&to=2026-11-23&format={fmt}{suffix}")
        assert status == 200, body
        pages += 1
        if fmt == "csv":
            lines = list(csv.reader(io.StringIO(body)))
            if pages == 1:
                header, lines = lines[0], lines[1:]  # only the first page carries the header
            rows += [dict(zip(header, line, strict=True)) for line in lines]
        else:
            rows += [json.loads(line) for line in body.splitlines()]
        token = headers.get("X-Next-Token")
        if not token:
            break
    assert pages == 2
    assert sorted(r["decision_id"] for r in rows) == sorted(ids)


def unsigned_token(query: DecisionQuery, **state: Any) -> str:
    """A next_token as the API used to accept it: base64 JSON naming the query, its state unchecked."""
    text = json.dumps({"q": query.fingerprint()[:16], **state})
    return base64.urlsafe_b64encode(text.encode()).decode()


RANGE = DecisionQuery(start=NOW - timedelta(days=1), end=NOW.replace(hour=23, minute=59, second=59, microsecond=999999))
RANGE_PATH = "/decisions?from=2026-11-22T12:00:00Z&to=2026-11-23&limit=5"


@pytest.mark.parametrize(
    "state",
    [
        {"day": "zzzz", "cursors": {}},  # was a 502 (a day that is no date)
        {"day": "2027-11-23", "cursors": {}},  # a year ahead: was ~5,900 Queries in one request
        {"day": "2026-11-23", "cursors": {"2026-11-23#00": "garbage"}},  # was 503 TRY_AGAIN
        {"day": "2026-11-23", "cursors": {"2026-11-23#00": {"decision_id": {"N": "1"}}}},
    ],
    ids=["not-a-day", "a-year-ahead", "malformed-cursor", "cursor-of-another-shape"],
)
def test_a_forged_token_is_refused_400_naming_next_token_before_any_query(aws: Any, state: dict[str, Any]) -> None:
    # Given decisions, and a token a caller made up in the format the API once trusted
    seed(aws, 20, customers=2, span=timedelta(hours=20))
    from shared.adapters import aws as clients

    queries: list[str] = []  # counted on the process-wide client the API uses
    clients.client("dynamodb").meta.events.register("before-call.dynamodb.Query", lambda **_: queries.append("q"))
    forged = urllib.parse.quote(unsigned_token(RANGE, **state))
    # When it is sent as next_token
    status, _, body = call("GET", f"{RANGE_PATH}&next_token={forged}")
    # Then it is refused, naming next_token, and nothing was read
    assert (status, body["code"]) == (400, "INVALID_INPUT")
    assert [f["field"] for f in body["fields"]] == ["next_token"]
    assert queries == []


def test_a_token_of_the_policy_api_is_refused_by_the_decisions_api(aws: Any) -> None:
    from shared.adapters.policy_store import TOKEN_KIND

    token = wiring.token_signer().encode(TOKEN_KIND, RANGE.fingerprint(), {"day": "2026-11-23", "cursors": {}})
    status, _, body = call("GET", f"{RANGE_PATH}&next_token={urllib.parse.quote(token)}")
    assert (status, [f["field"] for f in body["fields"]]) == (400, ["next_token"])


def test_a_genuine_token_stays_valid_with_another_page_size(aws: Any) -> None:
    seed(aws, 30, customers=1, span=timedelta(hours=20), days=False)
    _, _, first = call("GET", "/decisions?customer_id=c-0&limit=10")
    status, _, second = call("GET", f"/decisions?customer_id=c-0&limit=20&next_token={first['next_token']}")
    assert status == 200
    assert len(second["items"]) == 20 and second["next_token"] is None
    assert not {d["decision_id"] for d in first["items"]} & {d["decision_id"] for d in second["items"]}


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/decisions?from=0001-01-01T00:00:00%2B05:00&to=2026-11-23", "from"),  # was a 502
        ("/decisions?customer_id=c-1&to=9999-12-31", "to"),
        ("/decisions?customer_id=c-1&from=9999-12-31T23:59:59%2B00:00", "from"),
        ("/decisions?from=1999-12-31&to=2000-01-02", "from"),
        ("/decisions?from=2026-11-23&to=2026-11-25", "to"),  # tomorrow (2026-11-24) is the latest
        ("/stats?from=0001-01-01T00:00:00%2B05:00&to=2026-11-23", "from"),  # was a 502
        ("/stats?from=2026-11-20&to=9999-12-31", "to"),
        ("/decisions/export?from=0001-01-01T00:00:00%2B05:00&to=2026-11-23", "from"),
        ("/decisions/export?from=2026-11-20&to=9999-12-31T23:59:59Z", "to"),
    ],
)
def test_times_outside_2000_to_tomorrow_are_refused_400_naming_the_parameter(path: str, field: str) -> None:
    status, _, body = call("GET", path)
    assert (status, body["code"]) == (400, "INVALID_INPUT")
    assert [f["field"] for f in body["fields"]] == [field]
    assert "2000-01-01" in body["message"]


def test_tomorrow_is_still_a_valid_bound() -> None:
    assert call("GET", "/decisions?customer_id=c-1&to=2026-11-24")[0] == 200
    assert call("GET", "/stats?from=2026-11-20&to=2026-11-24")[0] == 200


def large(decision: Decision, n: int) -> Decision:
    """The decision as a policy with many windows and overrides explains it: ~7 KB in all."""
    extra = [
        RuleCheck(
            rule=f"survey_cap_window_{i}",
            passed=True,
            message=f'0 surveys in the last {i + 1} days in scope "vip", cap {i + 2}: ' + "x" * 60,
            figures={"count": 0, "cap": i + 2, "window": f"{i + 1} days", "next_eligible": None},
        )
        for i in range(20)
    ]
    return decision.model_copy(update={"explanation": (*decision.explanation, *extra)})


def test_an_export_page_of_large_decisions_stays_under_lambdas_6_mb_response_limit(aws: Any) -> None:
    # Given 900 decisions of about 7 KB each (over 6 MB in all, fewer than a 2,000-decision page)
    client = boto3.client("dynamodb")
    items, ids = [], []
    for n in range(900):
        at = NOW - timedelta(hours=20) + timedelta(seconds=60 * n)
        event = InteractionClosed.model_validate(
            detail(
                event_id=f"big-{n}", interaction_id=f"big-i{n}", customer_id=f"c-{n % 700}", closed_at=at.isoformat()
            )
        )
        decision = large(engine.decide(event, ContactLedger(event.customer_id), default_policy(), at), n)
        ids.append(decision.decision_id)
        items.append({"PutRequest": {"Item": decision_log.to_item(decision, timedelta(days=400))}})
    for start in range(0, len(items), 25):
        client.batch_write_item(RequestItems={aws.names["DecisionLogTable"]: items[start : start + 25]})
    drain_stream(aws)
    # When the day is exported as NDJSON, page after page
    from functions.admin_api.app import handler

    seen, token, sizes = [], None, []
    while True:
        query = {"from": ["2026-11-22T12:00:00Z"], "to": ["2026-11-23"], "format": ["ndjson"]}
        if token:
            query["next_token"] = [token]
        event = api_gateway_event("GET", "/decisions/export", query=query)
        answer = handler(event, LambdaContext("admin-api"))
        assert answer["statusCode"] == 200
        # Then each whole Lambda response, as the runtime serializes it, is well under 6 MB
        sizes.append(len(json.dumps(answer).encode()))
        seen += [json.loads(line)["decision_id"] for line in answer["body"].splitlines()]
        token = (answer.get("multiValueHeaders") or {}).get("X-Next-Token", [None])[0]
        if not token:
            break
    assert max(sizes) < 5 * 1024 * 1024, sizes
    # And every decision is exported exactly once, over more pages than the count alone would need
    assert len(sizes) >= 2
    assert sorted(seen) == sorted(ids)
