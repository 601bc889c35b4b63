"""Release function: a pending follow-up's one-time schedule fired (EventBridge Scheduler invokes it
with the schedule's Input `{"decision_id": ...}`); re-check it, release or cancel it exactly once
(shared.usecases.release).

A failure raises: Scheduler retries the invocation (the template's RetryPolicy), then sends the
Input to the release dead-letter queue (an alarm watches it). A repeated firing changes nothing.
"""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import wiring
from shared.adapters.tracing import LazyTracer

logger = Logger()
tracer = LazyTracer()  # X-Ray is imported at the first invocation, not at cold import
metrics = Metrics()

# Decision ids are the governor's own (shared.domain.decision.decision_id_for).
_DECISION_ID = re.compile(r"dcn_[a-z2-7]{1,64}")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    decision_id = event.get("decision_id") if isinstance(event, dict) else None
    if not isinstance(decision_id, str) or not _DECISION_ID.fullmatch(decision_id):
        # Never retried into success: say so once and leave it (no schedule of ours sends this).
        logger.error("release input without a valid decision_id")
        metrics.add_metric(name="ReleaseInvalidInput", unit=MetricUnit.Count, value=1)
        return {"decision_id": None, "state": None, "state_reason": None, "changed": False}
    result = wiring.release().release(decision_id)
    if result.changed and result.decision is not None:
        name = "FollowUpReleased" if result.decision.state_reason is None else "FollowUpCancelled"
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    return result.as_dict()
