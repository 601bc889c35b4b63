"""Synchronous decide: POST /decide, and the same decision for an Amazon Connect contact flow.

Exactly the queue path's use case (shared.usecases.decide): the same event_id sent both ways
yields one decision. The answer comes once the decision is committed; the decision log's stream
publishes and counts it (shared.usecases.log_stream), whether or not the caller ever retries."""

from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from shared import wiring
from shared.adapters.tracing import LazyTracer
from shared.api import connect
from shared.api.http import documented, install_error_handlers
from shared.domain.decision import Decision
from shared.domain.errors import GovernorError, field_problems
from shared.domain.events import InteractionClosed

logger = Logger()
tracer = LazyTracer()  # X-Ray is imported at the first invocation, not at cold import
metrics = Metrics()
app = APIGatewayRestResolver(enable_validation=True)
install_error_handlers(app)


def decide_one(event: InteractionClosed) -> Decision:
    """Runs the use case for one event and turns what went wrong into the error the caller sees."""
    [result] = wiring.decide().run([event])
    if result.refused is not None:
        raise result.refused  # 400 (closed_at in the future), 409 IDEMPOTENCY_KEY_REUSED
    if result.failed is not None:
        raise result.failed  # throttling, timeouts: 503 TRY_AGAIN (shared.api.http)
    decision = result.decision
    assert decision is not None  # neither refused nor failed means decided
    logger.info(
        "decided",
        extra={
            "event_id": event.event_id,
            "decision_id": decision.decision_id,
            "action": str(decision.action),
            "reason": str(decision.reason),
            "duplicate": result.duplicate,
        },
    )
    metrics.add_metric(
        name="DuplicateEvents" if result.duplicate else f"Decision.{decision.action}", unit=MetricUnit.Count, value=1
    )
    return decision


@app.post(
    "/decide",
    responses=documented(
        400,
        409,
        success={
            "description": "The decision, once committed (the same for every retry of the event_id).",
            "content": {"application/json": {"model": Decision}},
        },
    ),
)
@tracer.capture_method(capture_response=False)
def post_decide(detail: Annotated[InteractionClosed, Body()]) -> dict[str, Any]:
    return decide_one(detail).model_dump(mode="json")


def contact_flow(event: dict[str, Any]) -> dict[str, str]:
    try:
        detail = InteractionClosed.model_validate(connect.detail_from(event))
    except ValidationError as error:
        found = field_problems(error)
        message = "; ".join(f"{p['field']}: {p['message']}" for p in found)
        return connect.refusal("INVALID_INPUT", message, [p["field"] for p in found])
    try:
        return connect.answer(decide_one(detail))
    except GovernorError as error:  # refused (INVALID_INPUT, IDEMPOTENCY_KEY_REUSED) or TRY_AGAIN
        return connect.refusal_for(error)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if connect.is_contact_flow_event(event):
        return contact_flow(event)
    return app.resolve(event, context)
