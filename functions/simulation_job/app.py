"""A simulation job's own steps, invoked by its state machine (SimulationStateMachine) with
`{"step": "plan" | "merge" | "fail", "job_id": ...}` (shared.usecases.simulation_job).

    plan   -> {"plan", "partitions": [0..16 x sub-partitions - 1], "max_concurrency"}: the Distributed
              Map's items (the plan sized to the window's events by the stats table's daily totals)
    merge  -> the answer stored on the job (every partition's counts merged)
    fail   -> the job marked failed with the error the state machine caught ({"Error", "Cause"})

A failure raises: the state machine retries the step, then marks the job failed.
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
    step, job_id = event["step"], str(event["job_id"])
    logger.append_keys(job_id=job_id, step=step)
    jobs = wiring.simulation_job()
    if step == "plan":
        # The stats table's daily totals size the plan: a large log gets more, smaller partitions.
        return jobs.plan_step(job_id, settings().simulation_max_concurrency, wiring.stats())
    if step == "merge":
        answer = jobs.merge_step(job_id)
    elif step == "fail":
        answer = jobs.fail_step(job_id, event.get("error") or {})
    else:
        raise ValueError(f"unknown step {step!r}: plan, merge or fail")
    logger.info("simulation job step", extra={"status": answer["status"], "changed": answer["changed"]})
    return answer
