"""Stream replay function: invoked by an operator once the cause of a parked stream batch is fixed
(`aws lambda invoke --function-name <StreamReplayFunction> --payload '{"limit": 10}' out.json`).
Each batch described on the log stream dead-letter queue is read back from the stream and handed
to the reader that gave up (shared.usecases.stream_replay); the answer lists what became of each."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import wiring
from shared.adapters.tracing import LazyTracer

logger = Logger()
tracer = LazyTracer()  # X-Ray is imported at the first invocation, not at cold import
metrics = Metrics()


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    limit: int = Field(default=10, ge=1, le=100, description="How many parked batches to replay at most.")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any] | None, context: LambdaContext) -> dict[str, Any]:
    try:
        request = ReplayRequest.model_validate(event or {})
    except ValidationError as error:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]) or "(payload)", "message": e["msg"]}
            for e in error.errors(include_url=False, include_input=False)
        ]
        return {"error": "INVALID_INPUT", "message": 'send {"limit": 1..100} or nothing', "fields": problems}
    outcomes = wiring.stream_replay().run(request.limit)
    replayed = sum(1 for o in outcomes if o.result == "replayed")
    metrics.add_metric(name="ParkedBatchesReplayed", unit=MetricUnit.Count, value=replayed)
    logger.info("parked batches", extra={"replayed": replayed, "left": len(outcomes) - replayed})
    return {"replayed": replayed, "left": len(outcomes) - replayed, "batches": [o.as_json() for o in outcomes]}
