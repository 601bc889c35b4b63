"""Synchronous decide: POST /decide, and the same decision for an Amazon Connect contact flow.

Exactly the queue path's engine, ledger, idempotency and log: the same event_id sent both ways
yields one decision. The answer comes after the commit and after publishing."""

from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from shared import wiring
from shared.api import connect
from shared.api.http import install_error_handlers
from shared.domain.decision import Decision
from shared.domain.errors import InvalidInput, PublishFailed, TransientFailure, field_problems
from shared.domain.events import InteractionClosed

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayRestResolver(enable_validation=True)
install_error_handlers(app)


def decide_and_publish(event: InteractionClosed) -> Decision:
    clock = wiring.current_clock()
    problem = event.clock_problem(clock.now()) if clock.refuses_future_events else None
    if problem:
        raise InvalidInput(f"closed_at {problem}", [{"field": "closed_at", "message": problem}])
    outcome = wiring.governor().decide(event)
    decision = outcome.decision
    try:
        unpublished = wiring.publisher().publish([decision])
    except (ClientError, BotoCoreError) as error:
        unpublished = [decision]
        logger.warning("publishing failed", extra={"decision_id": decision.decision_id, "error": type(error).__name__})
    if unpublished:
        # Committed but not yet announced: the caller's retry returns this decision and publishes it.
        raise PublishFailed("the decision is recorded but could not be published yet; send the request again")
    if wiring.stats().count([decision], clock.now()):
        raise TransientFailure("the decision is recorded but not yet counted; send the request again")
    logger.info(
        "decided",
        extra={
            "event_id": event.event_id,
            "decision_id": decision.decision_id,
            "action": str(decision.action),
            "reason": str(decision.reason),
            "duplicate": outcome.duplicate,
        },
    )
    metrics.add_metric(
        name="DuplicateEvents" if outcome.duplicate else f"Decision.{decision.action}", unit=MetricUnit.Count, value=1
    )
    return decision


@app.post("/decide")
@tracer.capture_method
def post_decide(detail: Annotated[InteractionClosed, Body()]) -> dict[str, Any]:
    return decide_and_publish(detail).model_dump(mode="json")


def contact_flow(event: dict[str, Any]) -> dict[str, str]:
    try:
        detail = InteractionClosed.model_validate(connect.detail_from(event))
    except ValidationError as error:
        found = field_problems(error)
        message = "; ".join(f"{p['field']}: {p['message']}" for p in found)
        return connect.refusal("INVALID_INPUT", message, [p["field"] for p in found])
    try:
        return connect.answer(decide_and_publish(detail))
    except InvalidInput as error:
        return connect.refusal(error.code, str(error), [f["field"] for f in error.fields])


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if connect.is_contact_flow_event(event):
        return contact_flow(event)
    return app.resolve(event, context)
