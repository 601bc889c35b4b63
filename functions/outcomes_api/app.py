"""POST /outcomes: what became of released follow-ups, from sending systems without EventBridge access.

Recorded in the request (shared.usecases.record_outcome), so each refused item comes back with its
code at once; the same use case serves the FollowUpOutcome queue (functions/outcomes)."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from functions.outcomes_api.models import MAX_OUTCOMES, OutcomesAnswer
from shared import wiring
from shared.adapters.tracing import LazyTracer
from shared.api.http import documented, install_error_handlers
from shared.domain.errors import InvalidInput, TransientFailure, field_problems
from shared.domain.outcomes import FollowUpOutcome

logger = Logger()
tracer = LazyTracer()  # X-Ray is imported at the first invocation, not at cold import
metrics = Metrics()
app = APIGatewayRestResolver()
install_error_handlers(app)


def items_of(payload: Any) -> list[Any]:
    """One outcome object, or {"outcomes": [outcome, ...]} with at most MAX_OUTCOMES."""
    if isinstance(payload, dict) and set(payload) == {"outcomes"}:
        outcomes = payload["outcomes"]
        if not isinstance(outcomes, list) or not outcomes:
            raise InvalidInput(
                "outcomes must be a non-empty list of FollowUpOutcome objects",
                [{"field": "outcomes", "message": "must be a non-empty list"}],
            )
        if len(outcomes) > MAX_OUTCOMES:
            raise InvalidInput(
                f"at most {MAX_OUTCOMES} outcomes per request, got {len(outcomes)}",
                [{"field": "outcomes", "message": f"has more than {MAX_OUTCOMES} items"}],
            )
        return outcomes
    if isinstance(payload, dict):
        return [payload]
    raise InvalidInput(
        'the body must be a FollowUpOutcome or {"outcomes": [...]}', [{"field": "body", "message": "is not an object"}]
    )


def parse(item: Any) -> FollowUpOutcome | list[dict[str, str]]:
    if not isinstance(item, dict):
        return [{"field": "body", "message": "must be a JSON object"}]
    try:
        return FollowUpOutcome.model_validate(item)
    except ValidationError as error:
        return field_problems(error)


def record(payload: Any) -> dict[str, Any]:
    accepted, failed = 0, []
    valid: list[tuple[int, FollowUpOutcome]] = []
    for index, item in enumerate(items_of(payload)):
        parsed = parse(item)
        if isinstance(parsed, list):
            message = "; ".join(f"{p['field']}: {p['message']}" for p in parsed)
            fields = sorted({p["field"] for p in parsed})
            failed.append({"index": index, "code": "INVALID_OUTCOME", "message": message, "fields": fields})
        else:
            valid.append((index, parsed))
    results = wiring.record_outcomes().run([outcome for _, outcome in valid])
    transient = 0
    for (index, _), result in zip(valid, results, strict=True):
        if result.refused is not None:
            refusal = result.refused
            fields = [f["field"] for f in refusal.fields]
            failed.append({"index": index, "code": refusal.code, "message": str(refusal), "fields": fields})
        elif result.failed is not None:
            transient += 1
            failed.append({"index": index, "code": "TRY_AGAIN", "message": "not recorded yet; send it again"})
        else:
            accepted += 1
    if valid and transient == len(valid):
        # Nothing could be recorded: one 503 says "send the request again", as /events answers.
        raise TransientFailure("no outcome could be recorded; send the request again shortly")
    metrics.add_metric(name="OutcomesAccepted", unit=MetricUnit.Count, value=accepted)
    metrics.add_metric(name="OutcomesRefused", unit=MetricUnit.Count, value=len(failed))
    logger.info("outcomes", extra={"accepted": accepted, "refused": len(failed)})
    return {"accepted": accepted, "failed": sorted(failed, key=lambda f: f["index"])}


@app.post(
    "/outcomes",
    responses=documented(
        400,
        ok=202,
        success={
            "description": "Recorded: how many items were accepted, and each refused one by index with its code.",
            "content": {content_types.APPLICATION_JSON: {"model": OutcomesAnswer}},
        },
    ),
)
@tracer.capture_method(capture_response=False)
def post_outcomes() -> Response[dict[str, Any]]:
    body = record(app.current_event.json_body)
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
