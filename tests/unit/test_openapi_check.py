"""The OpenAPI documents say what the APIs answer, and the check every API test runs through
(tests/openapi_check.py) refuses any answer a document does not declare."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra import openapi
from infra.lambda_runtime import LambdaContext, api_gateway_event
from shared.domain.decision import CancelReason, Reason
from tests.openapi_check import UndocumentedResponse, check, operations

ERROR = {"code": "INVALID_INPUT", "message": "from is after to; swap them", "fields": []}


def answer(status: int, body: Any, content_type: str = "application/json", **headers: str) -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    return {
        "statusCode": status,
        "multiValueHeaders": {"Content-Type": [content_type], **{k: [v] for k, v in headers.items()}},
        "body": text,
    }


def test_a_declared_answer_passes() -> None:
    check("GET", "/decisions", answer(200, {"items": [], "next_token": None}))
    check("GET", "/decisions", answer(400, ERROR))
    check("GET", "/policy/versions/{version}", answer(404, {**ERROR, "code": "NOT_FOUND"}))
    check("GET", "/decisions/export", answer(200, "a,b\n", "text/csv", **{"X-Next-Token": "t"}))


@pytest.mark.parametrize(
    ("method", "resource", "response", "why"),
    [
        ("GET", "/decisions", answer(418, ERROR), "answered 418"),
        ("GET", "/decisions", answer(422, ERROR), "answered 422"),  # Powertools' default, never sent
        ("GET", "/policy", answer(412, ERROR), "answered 412"),  # only changes can conflict
        ("GET", "/decisions/export", answer(200, "{}", "application/json"), "'application/json'"),
        ("GET", "/decisions", answer(200, {"items": []}, **{"X-Next-Token": "t"}), "undocumented headers"),
        ("GET", "/decisions", answer(400, {"code": "INVALID_INPUT"}), "does not match"),
        ("GET", "/decisions", answer(200, {"items": [{"decision_id": 1}]}), "does not match"),
        ("GET", "/decisions", answer(400, "not json"), "not JSON"),
        ("DELETE", "/decisions", answer(200, {}), "in no OpenAPI document"),
    ],
    ids=["status", "422", "412-on-a-read", "content-type", "header", "error-body", "item", "not-json", "route"],
)
def test_an_answer_the_document_does_not_declare_fails(
    method: str, resource: str, response: dict[str, Any], why: str
) -> None:
    with pytest.raises(UndocumentedResponse, match=re.escape(why)):
        check(method, resource, response)


def test_every_api_handler_answer_in_the_suite_is_checked(_openapi_checking: list[str]) -> None:
    # Given the admin API's handler, asked for a route API Gateway would never send it
    from functions.admin_api.app import handler

    event = api_gateway_event("GET", "/nowhere", resource="/nowhere")
    # When it answers (404), the session-wide check sees the answer and refuses it
    with pytest.raises(UndocumentedResponse, match="in no OpenAPI document"):
        handler(event, LambdaContext("admin-api"))
    # (and records it, so a test whose handler ran in another thread fails too; cleared here)
    assert _openapi_checking.pop().startswith("GET /nowhere")


def test_every_operation_declares_its_refusals_as_the_error_body_and_never_422() -> None:
    for (method, path), (document, operation) in operations().items():
        responses = operation["responses"]
        assert "422" not in responses, f"{method} {path}"
        assert {"500", "503"} <= set(responses), f"{method} {path}"
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                # 403 is API Gateway's IAM refusal, before any function: its body is API Gateway's own.
                body = "GatewayError" if status == "403" else "Error"
                assert response["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{body}"}
        assert "403" in responses, f"{method} {path}"
        assert "HTTPValidationError" not in document["components"]["schemas"]


def test_the_documents_declare_the_headers_content_types_and_statuses_the_apis_send() -> None:
    ops = {route: operation["responses"] for route, (_, operation) in operations().items()}
    export = ops[("GET", "/decisions/export")]["200"]
    assert set(export["content"]) == {"text/csv", "application/x-ndjson"}
    assert "X-Next-Token" in export["headers"]
    for route in [
        ("GET", "/policy"),
        ("PUT", "/policy"),
        ("GET", "/policy/versions/{version}"),
        ("POST", "/policy/rollback"),
    ]:
        assert "ETag" in ops[route]["200"]["headers"], route
    assert {"412", "428"} <= set(ops[("PUT", "/policy")]) and {"412", "428"} <= set(ops[("POST", "/policy/rollback")])
    assert {"200", "400", "409", "503"} <= set(ops[("POST", "/decide")])
    assert "202" in ops[("POST", "/events")] and "200" not in ops[("POST", "/events")]
    assert set(openapi.APIS) == {"admin-api", "policy-api", "events-api"}


def test_every_reason_code_is_documented() -> None:
    text = (openapi.ROOT / "docs" / "reasons.md").read_text()
    reasons, lifecycle = text.split("## Lifecycle and cancellation reasons")
    assert {str(r) for r in Reason} == set(re.findall(r"^\| `([A-Z_]+)` \|", reasons, re.M))
    assert {str(r) for r in CancelReason} == set(re.findall(r"^\| `([A-Z_]+)` \|", lifecycle, re.M))
