"""Every HTTP route of the committed OpenAPI documents, fuzzed through its handler with API
Gateway events: random path and query values, random JSON (and non-JSON) bodies. No 5xx, no stack
trace, every refusal is JSON with a code and a message, and every answer is one the route's OpenAPI
document declares (tests/conftest.py checks each against it)."""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra import openapi
from infra.lambda_runtime import LambdaContext, api_gateway_event
from shared import wiring
from shared.adapters.clock import FixedClock
from tests.conftest import NOW, detail

MODULES = {route: module for name in openapi.APIS for route, module in openapi.handler_modules(name).items()}
ROUTES = [
    (MODULES[(method.upper(), path)], method.upper(), path, operation)
    for name in openapi.APIS
    for path, methods in json.loads((openapi.DOCS / f"{name}.json").read_text())["paths"].items()
    for method, operation in methods.items()
]
# Ingest and decide again, with bodies close to a valid detail (random JSON rarely gets past parsing).
EXTRA = [("functions.ingest.app", "POST", "/events"), ("functions.decide_api.app", "POST", "/decide")]

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["", "0", "-1", "9" * 30, "2026-11-23", "x/../y", "dcn_x", "%00", "9999-12-31", "0001-01-01T00:00:00+05:00"]
    ),
    # next_token-shaped: base64url of JSON, as the unsigned tokens were
    st.sampled_from(["eyJkYXkiOiJ6enp6In0=", "eyJxIjoieCJ9", "AQ" * 40, "A" * 5000]),
)


@pytest.fixture(autouse=True, scope="module")
def every_environment() -> Iterator[None]:
    import boto3
    from moto import mock_aws

    from infra.local.provision import provision

    saved = dict(os.environ)
    with mock_aws():
        stack = provision(boto3.Session(region_name="us-east-1"))
        for function in (
            "DecideFunction",
            "IngestFunction",
            "DecideApiFunction",
            "PolicyApiFunction",
            "AdminApiFunction",
        ):
            os.environ.update(stack.environment(function))
        wiring.reset()
        wiring.use_clock(FixedClock(NOW))
        yield
    os.environ.clear()
    os.environ.update(saved)
    wiring.reset()


def invoke(
    module: str, method: str, template: str, *, path_values: dict[str, str], query: dict[str, str], body: str | None
) -> dict[str, Any]:
    handler = __import__(module, fromlist=["handler"]).handler
    path = template
    for name, value in path_values.items():
        path = path.replace("{" + name + "}", urllib.parse.quote(value, safe="") or "x")
    event = api_gateway_event(
        method,
        path,
        resource=template,
        path_parameters=path_values or None,
        query={k: [v] for k, v in query.items()},
        body=body,
    )
    return handler(event, LambdaContext("fuzz"))  # type: ignore[no-any-return]


def check(answer: dict[str, Any]) -> None:
    assert answer["statusCode"] < 500, answer
    body = answer.get("body") or ""
    assert "Traceback" not in body
    if answer["statusCode"] >= 400:
        error = json.loads(body)
        assert error["code"] and error["message"]


def parameters(operation: dict[str, Any], where: str) -> list[str]:
    return [p["name"] for p in operation.get("parameters", []) if p["in"] == where]


@pytest.mark.parametrize(("module", "method", "path", "operation"), ROUTES, ids=[f"{m} {p}" for _, m, p, _ in ROUTES])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_route_of_the_openapi_documents_answers_5xx(
    module: str, method: str, path: str, operation: dict[str, Any], data: st.DataObject
) -> None:
    path_values = {p: data.draw(texts) for p in parameters(operation, "path")}
    query = {p: data.draw(texts) for p in parameters(operation, "query") if data.draw(st.booleans())}
    headers_body = data.draw(st.one_of(json_values.map(json.dumps), texts)) if "requestBody" in operation else None
    check(invoke(module, method, path, path_values=path_values, query=query, body=headers_body))


@pytest.mark.parametrize(("module", "method", "path"), EXTRA)
@settings(max_examples=40, deadline=None)
@given(
    body=st.one_of(
        json_values.map(json.dumps),
        texts,
        st.dictionaries(st.sampled_from(sorted(detail())), json_values).map(lambda d: json.dumps({**detail(), **d})),
    )
)
def test_ingest_and_decide_never_answer_5xx(module: str, method: str, path: str, body: str) -> None:
    check(invoke(module, method, path, path_values={}, query={}, body=body))
