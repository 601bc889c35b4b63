"""Outbox function: every minute (a schedule in template.yaml; the local stack runs it itself),
publishes and counts the committed decisions the decide path could not publish
(shared.usecases.outbox)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import wiring

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = wiring.outbox().sweep()
    metrics.add_metric(name="OutboxFound", unit=MetricUnit.Count, value=report.found)
    metrics.add_metric(name="OutboxPublished", unit=MetricUnit.Count, value=report.published)
    return report.as_dict()
