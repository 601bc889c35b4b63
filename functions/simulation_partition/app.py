"""One partition of a simulation job, invoked by the job's Distributed Map with
`{"job_id", "plan", "partition"}`: the partition's customers replayed from the decision log and
their counts recorded once with the job's progress (shared.usecases.simulation_job).

A failure raises: the Map's Retry runs the partition again (a partition already recorded is not
replayed again); when the retries run out the job fails.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import wiring
from shared.adapters.tracing import LazyTracer
from shared.config import settings

logger = Logger()
tracer = LazyTracer()  # X-Ray is imported at the first invocation, not at cold import


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from shared.adapters.log_replay import LogReader  # noqa: PLC0415 - the reader and engine: this function's work

    job_id, partition = str(event["job_id"]), int(event["partition"])
    logger.append_keys(job_id=job_id, partition=partition)
    answer = wiring.simulation_job().partition_step(
        job_id, event["plan"], partition, LogReader(settings().decision_log_table, settings().stats_table)
    )
    logger.info("simulation partition", extra={"recorded": answer["recorded"], "events": answer.get("events")})
    return answer
