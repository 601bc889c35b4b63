"""Every id the event contract accepts works in every admin route that takes an id in its path,
sent as API Gateway REST (Lambda proxy) delivers it: `path` percent-encoded as the client sent it,
`pathParameters` decoded once, `resource` the template's route."""

from __future__ import annotations

import json
import os
import urllib.parse
from typing import Any

import pytest
from pydantic import TypeAdapter

from infra.lambda_runtime import LambdaContext, api_gateway_event
from shared import wiring
from shared.adapters.clock import FixedClock
from shared.domain.events import CustomerId
from tests.conftest import NOW, detail, drain, ledger_of, put_events

# Each character the contract allows besides letters and digits, alone and all together.
IDS = ["qa/c2", "qa#c3", "qa:c4", "qa=c5", "qa+c6", "qa.c7", "qa_c8", "qa-c9", "a/b#c:d=e+f.g_h-i", "q//", "7#/"]


def admin(method: str, route: str, params: dict[str, str], body: Any = None, query: str = "") -> tuple[int, Any]:
    """The admin function called the way API Gateway calls it for `route` (a template path), with
    each parameter percent-encoded in the path as a client must send it."""
    return admin_raw(method, route, {k: urllib.parse.quote(v, safe="") for k, v in params.items()}, body, query)


def admin_raw(method: str, route: str, encoded: dict[str, str], body: Any = None, query: str = "") -> tuple[int, Any]:
    """The same with the path segments exactly as the client sent them."""
    from functions.admin_api.app import handler

    path = route
    for name, value in encoded.items():
        path = path.replace(f"{{{name}}}", value)
    event = api_gateway_event(
        method,
        path,
        resource=route,
        path_parameters={k: urllib.parse.unquote(v) for k, v in encoded.items()},
        query=urllib.parse.parse_qs(query),
        headers={"Content-Type": "application/json", "X-Governor-Author": "sam"},
        body=json.dumps(body) if body is not None else None,
    )
    answer = handler(event, LambdaContext("admin-api"))
    return answer["statusCode"], json.loads(answer["body"])


@pytest.fixture(autouse=True)
def admin_environment(aws: Any) -> None:
    for function in ("AdminApiFunction", "DecideFunction"):
        os.environ.update(aws.environment(function))
    wiring.reset()
    wiring.use_clock(FixedClock(NOW))


def test_the_contract_accepts_every_id_used_here() -> None:
    for customer_id in IDS:
        assert TypeAdapter(CustomerId).validate_python(customer_id) == customer_id


def test_every_customer_route_serves_ids_with_every_allowed_character(aws: Any) -> None:
    # Given a decided interaction for each customer whose id holds / # : = + . _ -
    put_events(aws, [detail(event_id=f"e-{n}", interaction_id=f"i-{n}", customer_id=c) for n, c in enumerate(IDS)])
    drain(aws)
    for customer_id in IDS:
        params = {"customer_id": customer_id}
        # When an admin reads the customer's contact state
        status, state = admin("GET", "/customers/{customer_id}/contact-state", params)
        # Then it is this customer's, with the follow-up just approved
        assert (status, state.get("customer_id")) == (200, customer_id), (customer_id, state)
        assert len(state["recent_follow_ups"]) == 1, customer_id
        # When an admin opts the customer out of surveys, then reads the preferences back
        status, prefs = admin("PUT", "/customers/{customer_id}/preferences", params, {"survey": True, "source": "c1"})
        assert (status, prefs["customer_id"]) == (200, customer_id), (customer_id, prefs)
        status, prefs = admin("GET", "/customers/{customer_id}/preferences", params)
        assert (status, [o["kind"] for o in prefs["opt_outs"]]) == (200, ["survey"]), customer_id
        # Then the opt-out is stored under the very id the events carry, and shows in the state
        assert [o.kind for o in ledger_of(aws, customer_id).opt_outs] == ["survey"], customer_id
        _, state = admin("GET", "/customers/{customer_id}/contact-state", params)
        assert state["next_survey_allowed"] is None and [o["kind"] for o in state["opt_outs"]] == ["survey"]
        # And the customer's decisions are found by the id, and each decision by its own id
        status, page = admin("GET", "/decisions", {}, query=urllib.parse.urlencode({"customer_id": customer_id}))
        assert (status, [d["customer_id"] for d in page["items"]]) == (200, [customer_id]), (customer_id, page)
        decision_id = page["items"][0]["decision_id"]
        status, decision = admin("GET", "/decisions/{decision_id}", {"decision_id": decision_id})
        assert (status, decision["customer_id"]) == (200, customer_id)


@pytest.mark.parametrize("decision_id", IDS)
def test_a_decision_id_with_reserved_characters_is_looked_up_decoded(decision_id: str) -> None:
    # Given no decision with this id
    # When it is asked for
    status, body = admin("GET", "/decisions/{decision_id}", {"decision_id": decision_id})
    # Then 404 naming the id as sent, decoded: not a refusal of the encoded form, not a missing route
    assert (status, body["code"]) == (404, "NOT_FOUND"), body
    assert f"no decision {decision_id}" in body["message"]


@pytest.mark.parametrize("encoded", ["qa%2", "qa%zz", "qa%FF", "qa%40c", "qa%20c", "%2Fqa"])
def test_an_encoded_id_the_contract_refuses_is_a_400_naming_the_customer_id(encoded: str) -> None:
    # Given a path segment that does not decode to a valid id
    segments = {"customer_id": encoded}
    for method, route in [
        ("GET", "/customers/{customer_id}/contact-state"),
        ("GET", "/customers/{customer_id}/preferences"),
        ("PUT", "/customers/{customer_id}/preferences"),
    ]:
        body = {"survey": True, "source": "x"} if method == "PUT" else None
        # When it reaches a customer route
        status, answer = admin_raw(method, route, segments, body)
        # Then 400, naming customer_id, never a 5xx
        assert status == 400, (encoded, route, answer)
        assert [f["field"] for f in answer["fields"]] == ["customer_id"]
