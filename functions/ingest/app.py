"""POST /events: InteractionClosed details from upstream systems without EventBridge access."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.ingest.models import IngestAnswer
from shared import wiring
from shared.adapters.tracing import LazyTracer
from shared.api.http import documented, install_error_handlers
from shared.config import settings
from shared.usecases.ingest import ingest

logger = Logger()
tracer = LazyTracer()  # X-Ray is imported at the first invocation, not at cold import
metrics = Metrics()
app = APIGatewayRestResolver()
install_error_handlers(app)


@app.post(
    "/events",
    responses=documented(
        400,
        ok=202,
        success={
            "description": "Accepted: how many items were put on the bus, and each refused one by index.",
            "content": {content_types.APPLICATION_JSON: {"model": IngestAnswer}},
        },
    ),
)
@tracer.capture_method(capture_response=False)
def post_events() -> Response[dict[str, Any]]:
    # The time rule's present (shared.adapters.clock), as the decide paths check it.
    result = ingest(app.current_event.json_body, settings().event_bus_name, wiring.current_clock().present())
    metrics.add_metric(name="IngestAccepted", unit=MetricUnit.Count, value=result.accepted)
    metrics.add_metric(name="IngestRefused", unit=MetricUnit.Count, value=len(result.failed))
    logger.info("ingested", extra={"accepted": result.accepted, "refused": len(result.failed)})
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=result.as_json())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
