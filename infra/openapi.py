"""The OpenAPI documents of the HTTP APIs, generated from their Powertools resolvers and models.

`make openapi` writes them to docs/openapi/; a test fails when the committed files drift, and every
response the test suite gets from an API handler is checked against them (tests/openapi_check.py).

Each route declares what it really answers (shared.api.http.documented): its success with its
headers and content types, and its refusals as the one Error body. Powertools adds a 422
HTTPValidationError to every validated route; these APIs never send it (request validation answers
400 INVALID_INPUT), so it is taken out here.
"""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "openapi"
DESCRIPTION = (
    "Every route requires SigV4 (IAM) authorisation when deployed. Refusals and failures are JSON: "
    '{"code", "message", "fields": [{"field", "message"}]}; 503 TRY_AGAIN is worth a retry, 500 is not.'
)
COMPONENTS = "#/components/schemas/"
# API Gateway's own refusal, before any function runs (the local stack gives the same: infra/local/authz.py):
# a bad or unknown signature, or a caller whose IAM policies do not allow execute-api:Invoke on the route.
GATEWAY_ERROR = {
    "title": "GatewayError",
    "type": "object",
    "properties": {"message": {"type": "string", "title": "Message"}},
    "required": ["message"],
}
GATEWAY_REFUSAL = {
    "description": "Refused by API Gateway's IAM authorisation: the signature does not match, the key is unknown, "
    "or the caller's IAM policies do not allow execute-api:Invoke on this route (e.g. marketing-ops "
    "credentials on an admin route). The body is API Gateway's, not the Error shape.",
    "headers": {
        "x-amzn-ErrorType": {
            "description": "AccessDeniedException, InvalidSignatureException, UnrecognizedClientException or "
            "IncompleteSignatureException",
            "schema": {"type": "string"},
        }
    },
    "content": {"application/json": {"schema": {"$ref": COMPONENTS + "GatewayError"}}},
}


@dataclass(frozen=True)
class Api:
    title: str
    modules: tuple[str, ...]  # the Lambda handler modules whose resolvers serve its routes


APIS = {
    "policy-api": Api("Follow-up governor: marketing-ops policy API", ("functions.policy_api.app",)),
    "admin-api": Api("Follow-up governor: admin API", ("functions.admin_api.app",)),
    "events-api": Api(
        "Follow-up governor: events, synchronous decisions and follow-up outcomes",
        ("functions.ingest.app", "functions.decide_api.app", "functions.outcomes_api.app"),
    ),
}


def _request_bodies() -> dict[tuple[str, str], type[BaseModel]]:
    """Bodies a handler reads itself (so Powertools cannot see them): (path, method) -> model."""
    from functions.ingest.models import IngestRequest
    from functions.outcomes_api.models import OutcomesRequest

    return {("/events", "post"): IngestRequest, ("/outcomes", "post"): OutcomesRequest}


def _resolver_document(module: str, title: str) -> dict[str, Any]:
    app = importlib.import_module(module).app
    text = app.get_openapi_json_schema(title=title, version="1.0.0", description=DESCRIPTION)
    return json.loads(text)  # type: ignore[no-any-return]


def schema(name: str) -> dict[str, Any]:
    api = APIS[name]
    document: dict[str, Any] = {}
    for module in api.modules:
        part = _resolver_document(module, api.title)
        if not document:
            document = part
            continue
        document["paths"].update(part["paths"])
        document.setdefault("components", {}).setdefault("schemas", {}).update(
            part.get("components", {}).get("schemas", {})
        )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for (path, method), model in _request_bodies().items():
        if method in document["paths"].get(path, {}):
            body = model.model_json_schema(ref_template=COMPONENTS + "{model}")
            schemas.update(body.pop("$defs", {}))
            schemas[model.__name__] = body
            document["paths"][path][method]["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": COMPONENTS + model.__name__}}},
            }
    for methods in document["paths"].values():
        for operation in methods.values():
            operation["responses"].pop("422", None)
            operation["responses"]["403"] = GATEWAY_REFUSAL
    schemas["GatewayError"] = GATEWAY_ERROR
    _drop_unreferenced(document)
    return document


def _drop_unreferenced(document: dict[str, Any]) -> None:
    """Removes component schemas nothing refers to any more (HTTPValidationError, ValidationError)."""
    schemas = document.get("components", {}).get("schemas", {})
    while True:
        text = json.dumps({k: v for k, v in document.items() if k != "components"}) + json.dumps(list(schemas.values()))
        unused = [n for n in schemas if f'"{COMPONENTS}{n}"' not in text]
        if not unused:
            return
        for name in unused:
            del schemas[name]


def document(name: str) -> str:
    return json.dumps(schema(name), indent=2, sort_keys=True) + "\n"


def handler_modules(name: str) -> dict[tuple[str, str], str]:
    """(METHOD, path) -> the handler module serving it, for every operation of one document."""
    api = APIS[name]
    found: dict[tuple[str, str], str] = {}
    for module in api.modules:
        for path, methods in _resolver_document(module, api.title)["paths"].items():
            found.update({(method.upper(), path): module for method in methods})
    return found


def write_all() -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    for name in APIS:
        (DOCS / f"{name}.json").write_text(document(name))


if __name__ == "__main__":
    write_all()
    sys.stdout.write(f"wrote {', '.join(f'docs/openapi/{n}.json' for n in APIS)}\n")
