"""Log stream function: the decision log table's DynamoDB stream (NEW_AND_OLD_IMAGES) is the outbox.
Each batch of one shard's records is published in order (shared.usecases.log_stream), answering
with the first record not announced in `batchItemFailures`, so Lambda restarts the shard there;
after the mapping's retries, the batch's description goes to the log stream dead-letter queue (an
alarm watches it, and the stream's IteratorAge). Counting is the stream's other reader
(functions.log_count)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import wiring
from shared.adapters.tracing import LazyTracer
from shared.usecases.log_stream import Change

logger = Logger()
tracer = LazyTracer()  # X-Ray is imported at the first invocation, not at cold import
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    changes = [Change.from_record(record) for record in event.get("Records", [])]
    report = wiring.log_stream().run(changes)
    metrics.add_metric(name="StreamRecords", unit=MetricUnit.Count, value=report.records)
    metrics.add_metric(name="DecisionsAnnounced", unit=MetricUnit.Count, value=report.announced)
    if report.retry_from is not None:
        metrics.add_metric(name="StreamBatchesRetried", unit=MetricUnit.Count, value=1)
    logger.info(
        "stream batch",
        extra={
            "records": report.records,
            "announced": report.announced,
            "retry_from": report.retry_from,
        },
    )
    return {"batchItemFailures": report.batch_item_failures()}
