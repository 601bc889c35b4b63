"""HTTP edges: every error becomes JSON with a code, a message and the fields to change.

The status of a domain error comes from its type (shared.domain.errors), in this one place; nothing
matches message text, and no stack trace ever reaches a caller.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from botocore.exceptions import BotoCoreError, ClientError

from shared.domain.errors import GovernorError, field_path

TRANSIENT_AWS_ERRORS = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "TransactionConflictException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
    }
)

logger = Logger(child=True)


def error_response(status: int, code: str, message: str, fields: list[dict[str, str]] | None = None) -> Response[Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


def validation_fields(errors: Any) -> list[dict[str, str]]:
    """Powertools/pydantic errors as field paths (without the leading "body") and messages."""
    found = []
    for error in errors:
        if error.get("type") == "json_invalid":
            found.append({"field": "body", "message": "is not valid JSON"})
            continue
        path = [str(part) for part in error.get("loc", ()) if part not in ("body",)]
        found.append({"field": field_path(path), "message": str(error.get("msg", "is invalid"))})
    return found


def caller(event: Any) -> str:
    """Who is calling: the IAM identity API Gateway verified; locally (no IAM), the
    X-Governor-Author header or "local"."""
    identity = event.request_context.identity
    verified = identity.user_arn or identity.caller
    if verified:
        return str(verified)
    return str(event.headers.get("x-governor-author") or event.headers.get("X-Governor-Author") or "local")


def install_error_handlers(app: APIGatewayRestResolver) -> None:
    @app.exception_handler(RequestValidationError)
    def _invalid_request(error: RequestValidationError) -> Response[Any]:
        fields = validation_fields(error.errors())
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        return error_response(400, "INVALID_INPUT", f"the request is invalid: {summary}", fields)

    @app.exception_handler(json.JSONDecodeError)
    def _not_json(_: json.JSONDecodeError) -> Response[Any]:
        return error_response(400, "INVALID_JSON", "the body is not valid JSON")

    @app.exception_handler(RecursionError)
    def _too_deep(_: RecursionError) -> Response[Any]:
        return error_response(
            400, "INVALID_JSON", "the body is nested too deeply", [{"field": "body", "message": "is nested too deeply"}]
        )

    @app.exception_handler(GovernorError)
    def _domain(error: GovernorError) -> Response[Any]:
        if error.status >= 500:
            logger.exception("request failed", extra={"code": error.code})
        fields = getattr(error, "fields", None)
        return error_response(error.status, error.code, str(error), fields)

    @app.exception_handler(ClientError)
    def _aws(error: ClientError) -> Response[Any]:
        code = error.response.get("Error", {}).get("Code", "")
        if code in TRANSIENT_AWS_ERRORS:
            return error_response(503, "TRY_AGAIN", "the service is busy; send the request again shortly")
        logger.exception("AWS call failed", extra={"aws_error": code})
        return error_response(500, "INTERNAL", "an internal error occurred; it has been logged")

    @app.exception_handler(BotoCoreError)
    def _aws_transport(error: BotoCoreError) -> Response[Any]:
        logger.warning("AWS call did not complete", extra={"aws_error": type(error).__name__})
        return error_response(503, "TRY_AGAIN", "the service is busy; send the request again shortly")

    @app.not_found
    def _no_route(_: NotFoundError) -> Response[Any]:
        event = app.current_event
        return error_response(404, "NOT_FOUND", f"no route {event.http_method} {event.path}")
