"""Every response an API handler gives in the test suite must be one its OpenAPI document declares.

`checking_every_response()` (used by tests/conftest.py for the whole session) wraps Powertools'
APIGatewayRestResolver.resolve, through which every API handler answers: the handler calls of the
integration tests, the fuzzing and the local stack's gateway alike. `check` is the rule: the status
is declared for the operation, the Content-Type is one of its media types, every header beyond the
plain HTTP ones is declared, and a JSON body validates against the declared schema. So a document
that promises what the API does not do, or an API answer the document does not promise, fails the
test that produced it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from infra import openapi

# Headers every HTTP answer may carry without a word in the document.
PLAIN_HEADERS = frozenset({"content-type", "content-length", "date", "connection"})


class UndocumentedResponse(AssertionError):
    """A handler answered something its OpenAPI document does not declare."""


@cache
def operations() -> dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]]:
    """(METHOD, path template) -> (document, operation), over every committed document."""
    found = {}
    for name in openapi.APIS:
        document = json.loads((openapi.DOCS / f"{name}.json").read_text())
        for path, methods in document["paths"].items():
            for method, operation in methods.items():
                found[(method.upper(), path)] = (document, operation)
    return found


def headers_of(answer: dict[str, Any]) -> dict[str, str]:
    found = {k.lower(): ", ".join(v) for k, v in (answer.get("multiValueHeaders") or {}).items()}
    found.update({k.lower(): str(v) for k, v in (answer.get("headers") or {}).items()})
    return found


def check(method: str, resource: str, answer: dict[str, Any]) -> None:
    """Raises UndocumentedResponse unless `answer` (an API Gateway proxy response) is one the
    document declares for `method` `resource` (the route template, as API Gateway names it)."""
    where = f"{method} {resource}"
    if (method, resource) not in operations():
        raise UndocumentedResponse(f"{where} is in no OpenAPI document")
    document, operation = operations()[(method, resource)]
    status = str(answer.get("statusCode"))
    declared = operation["responses"].get(status)
    if declared is None:
        raise UndocumentedResponse(f"{where} answered {status}; the document declares {sorted(operation['responses'])}")
    headers = headers_of(answer)
    named = {h.lower() for h in declared.get("headers", {})}
    extra = set(headers) - PLAIN_HEADERS - named
    if extra:
        raise UndocumentedResponse(f"{where} {status} sent undocumented headers {sorted(extra)}")
    content = declared.get("content", {})
    body = answer.get("body") or ""
    if not content:
        if body:
            raise UndocumentedResponse(f"{where} {status} has a body; the document declares none")
        return
    media_type = headers.get("content-type", "").split(";")[0].strip()
    if media_type not in content:
        raise UndocumentedResponse(f"{where} {status} is {media_type!r}; the document declares {sorted(content)}")
    schema = content[media_type].get("schema", {})
    try:
        value = json.loads(body) if media_type == "application/json" else body
    except ValueError:
        raise UndocumentedResponse(f"{where} {status} declares JSON but its body is not JSON") from None
    # The schema's $refs point into the document: validate with the document as the root.
    validator = Draft202012Validator({"components": document.get("components", {}), **schema})
    problems = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if problems:
        first = problems[0]
        at = "/".join(str(p) for p in first.absolute_path) or "(root)"
        raise UndocumentedResponse(f"{where} {status} body does not match the document at {at}: {first.message}")


@contextmanager
def checking_every_response() -> Iterator[list[str]]:
    """While active, every APIGatewayRestResolver.resolve answer is checked; a failure raises in
    the handler call and is also collected (the local stack's gateway turns a raise into a 502,
    so the caller yields the list to fail on afterwards)."""
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

    original = APIGatewayRestResolver.resolve
    failures: list[str] = []
    lock = threading.Lock()

    def resolve(self: APIGatewayRestResolver, event: Any, context: Any) -> dict[str, Any]:
        answer: dict[str, Any] = original(self, event, context)
        request = event if isinstance(event, dict) else getattr(event, "raw_event", {})
        try:
            check(request["httpMethod"], request["resource"], answer)
        except UndocumentedResponse as problem:
            with lock:
                failures.append(str(problem))
            raise
        return answer

    APIGatewayRestResolver.resolve = resolve  # type: ignore[method-assign]
    try:
        yield failures
    finally:
        APIGatewayRestResolver.resolve = original  # type: ignore[method-assign]
