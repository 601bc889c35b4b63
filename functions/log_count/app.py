"""Log count function: the second reader of the decision log's stream. Each batch of one shard's
records (up to 300 s of them) is counted and its decisions listed on day pages, exactly once, by
one transaction (shared.usecases.log_count); a batch that cannot be counted is answered with its
first record in `batchItemFailures`, so Lambda hands it again whole and its receipt says what was
already counted. After the mapping's retries, the batch's description goes to the log stream
dead-letter queue (an alarm watches it, and this function's IteratorAge)."""

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
    report = wiring.log_count().run(changes)
    metrics.add_metric(name="StreamRecordsCounted", unit=MetricUnit.Count, value=report.counted)
    if report.retry_from is not None:
        metrics.add_metric(name="CountBatchesRetried", unit=MetricUnit.Count, value=1)
    logger.info(
        "count batch",
        extra={
            "records": report.records,
            "already_done": report.already_done,
            "counted": report.counted,
            "retry_from": report.retry_from,
        },
    )
    return {"batchItemFailures": report.batch_item_failures()}
