"""The Lambda context and event shapes local tooling hands to handlers."""

from __future__ import annotations

import time

from infra.lambda_runtime import LambdaContext, api_gateway_event


def test_each_context_carries_its_own_request_id_and_a_real_deadline() -> None:
    first, second = LambdaContext("decide", timeout_seconds=2), LambdaContext("decide", timeout_seconds=2)
    assert first.aws_request_id != second.aws_request_id
    before = first.get_remaining_time_in_millis()
    time.sleep(0.05)
    assert 0 < first.get_remaining_time_in_millis() < before <= 2000


def test_an_api_gateway_event_carries_route_query_and_a_request_id() -> None:
    event = api_gateway_event(
        "GET",
        "/decisions/d-1",
        resource="/decisions/{decision_id}",
        path_parameters={"decision_id": "d-1"},
        query={"limit": ["5"]},
    )
    assert event["resource"] == "/decisions/{decision_id}"
    assert event["pathParameters"] == {"decision_id": "d-1"}
    assert event["queryStringParameters"] == {"limit": "5"}
    assert event["requestContext"]["requestId"]
