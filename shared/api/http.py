"""HTTP edges: every error becomes JSON with a code, a message and the fields to change.

The status of a domain error comes from its type (shared.domain.errors), in this one place; nothing
matches message text, and no stack trace ever reaches a caller.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, ConfigDict, Field

from shared.domain.errors import GovernorError, field_path

if TYPE_CHECKING:
    from botocore.exceptions import BotoCoreError, ClientError

logger = Logger(child=True)


# Both models only document the error body in the OpenAPI documents (error_response writes the JSON
# itself), so their schemas are built when a document is generated, never in a function.
class FieldProblem(BaseModel):
    model_config = ConfigDict(defer_build=True)

    field: str = Field(description="The path of the request part to change: a query parameter, a header, body.a.0.")
    message: str = Field(description="What is wrong with it (never the value sent).")


class Error(BaseModel):
    """Every refusal and failure of every API: what happened, what to change, and where."""

    model_config = ConfigDict(defer_build=True)

    code: str = Field(description="INVALID_INPUT, INVALID_JSON, NOT_FOUND, VERSION_CONFLICT, TRY_AGAIN, ...")
    message: str
    fields: list[FieldProblem] = Field(description="The request parts to change; empty when none is to blame.")


_STATUS_TEXT = {
    400: "Invalid request: the body says which fields to change (code INVALID_INPUT or INVALID_JSON).",
    404: "Not found (code NOT_FOUND).",
    409: "Conflict: the idempotency key was used for a different request (code IDEMPOTENCY_KEY_REUSED).",
    412: "The version in If-Match is no longer current (code VERSION_CONFLICT); re-read and reapply.",
    428: "If-Match is required (code PRECONDITION_REQUIRED).",
    500: "Internal error (code INTERNAL): a fault of the service, logged; retrying at once will not help.",
    503: "Temporarily unavailable (code TRY_AGAIN): send the same request again shortly.",
}


def tagged(description: str, model: type[BaseModel], etag: str) -> OpenAPIResponse:
    """A success answering `model` with an ETag header (`etag` says what to send it back as)."""
    return {
        "description": description,
        "headers": {"ETag": {"description": etag, "schema": {"type": "string"}}},
        "content": {content_types.APPLICATION_JSON: {"model": model}},
    }


def documented(*refusals: int, ok: int = 200, success: OpenAPIResponse | None = None) -> dict[int, OpenAPIResponse]:
    """A route's responses for its OpenAPI document: the success (by default the route's return
    model), each refusal it can give, and the 500 and 503 every route can give, as Error bodies."""
    responses: dict[int, OpenAPIResponse] = {ok: success or {"description": "OK"}}
    for status in sorted({*refusals, 500, 503}):
        responses[status] = {
            "description": _STATUS_TEXT[status],
            "content": {content_types.APPLICATION_JSON: {"model": Error}},
        }
    return responses


def error_response(status: int, code: str, message: str, fields: list[dict[str, str]] | None = None) -> Response[Any]:
    body: dict[str, Any] = {"code": code, "message": message, "fields": fields or []}
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


def validation_fields(errors: Any) -> list[dict[str, str]]:
    """Powertools/pydantic errors as field paths (without the leading "body") and messages."""
    found = []
    for error in errors:
        if error.get("type") == "json_invalid":
            found.append({"field": "body", "message": "is not valid JSON"})
            continue
        path = [str(part) for part in error.get("loc", ()) if part not in ("body",)]
        # pydantic prefixes our validators' own messages with "Value error, ": Python's words, not ours.
        message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        found.append({"field": field_path(path), "message": message})
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
        return error_response(
            400, "INVALID_JSON", "the body is not valid JSON", [{"field": "body", "message": "is not valid JSON"}]
        )

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

    def _aws(error: ClientError | BotoCoreError) -> Response[Any]:
        # Classified by botocore's retry rules (throttling, 5xx/429, timeouts, connections): a
        # ParamValidationError or a missing resource is our fault, and a retry would not mend it.
        from shared.adapters.aws_errors import error_code, is_transient  # noqa: PLC0415 - botocore: see _bug

        if is_transient(error):
            logger.warning("AWS call did not complete", extra={"aws_error": error_code(error)})
            return error_response(503, "TRY_AGAIN", "the service is busy; send the request again shortly")
        logger.exception("AWS call failed", extra={"aws_error": error_code(error)})
        return error_response(500, "INTERNAL", "an internal error occurred; it has been logged")

    @app.exception_handler(Exception)
    def _bug(error: Exception) -> Response[Any]:
        # botocore's errors are told apart here, not registered by class: that would import
        # botocore.exceptions at every cold start (issue 12, cold imports), and one can only have
        # been raised once botocore has loaded it.
        botocore_errors = sys.modules.get("botocore.exceptions")
        if botocore_errors is not None and isinstance(
            error, (botocore_errors.ClientError, botocore_errors.BotoCoreError)
        ):
            return _aws(error)
        # A fault of ours: logged with its trace, answered as JSON (API Gateway would say 502).
        logger.exception("request failed", extra={"error": type(error).__name__})
        return error_response(500, "INTERNAL", "an internal error occurred; it has been logged")

    @app.not_found
    def _no_route(_: NotFoundError) -> Response[Any]:
        event = app.current_event
        return error_response(404, "NOT_FOUND", f"no route {event.http_method} {event.path}")
