"""Marketing ops: versioned, validated contact policies, what-if simulation and rollback."""

import time
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from functions.policy_api.models import (
    Candidate,
    PolicyChange,
    PolicyVersion,
    RollbackRequest,
    SimulationJobRequest,
    SimulationJobStarted,
    SimulationJobStatus,
    SimulationReport,
    SimulationRequest,
    ValidationReport,
    VersionList,
)
from shared import wiring
from shared.adapters.tracing import LazyTracer
from shared.api.http import caller, documented, install_error_handlers, tagged
from shared.config import settings
from shared.domain.errors import InvalidInput, PreconditionRequired, field_problems

# The policy model and its store are imported by the routes when they run (every route reads the
# store through the wiring), so the cold import is the HTTP edge only.
if TYPE_CHECKING:
    from shared.adapters.policy_store import StoredPolicy
    from shared.adapters.simulation_jobs import Job
    from shared.domain.policy import Policy

logger = Logger()
tracer = LazyTracer()  # X-Ray is imported at the first invocation, not at cold import
metrics = Metrics()
app = APIGatewayRestResolver(enable_validation=True)
install_error_handlers(app)

# What the routes answering one version send: the version, and its ETag for the next If-Match.
VERSIONED = tagged("The policy version.", PolicyVersion, 'The version, e.g. "3": send it as If-Match to change it.')

IfMatch = Annotated[
    str | None, Header(alias="if-match", description='The ETag of the version this change is based on, e.g. "3".')
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="idempotency-key",
        description="Makes a retried start answer the same job; the same key with another request gets 409.",
    ),
]
JOB_STARTED: OpenAPIResponse = {
    "description": "The job is running (or, for a repeated Idempotency-Key, the job that key started).",
    "content": {content_types.APPLICATION_JSON: {"model": SimulationJobStarted}},
}


def parse_policy(document: dict[str, Any]) -> "Policy":
    """Validates a candidate policy; every problem is reported by its path under `policy`."""
    from shared.domain.policy import Policy  # noqa: PLC0415

    try:
        return Policy.model_validate({**document, "version": 0})
    except ValidationError as error:
        problems = field_problems(error, prefix=("policy",))
        raise InvalidInput(f"the policy has {len(problems)} problem(s); nothing was changed", problems) from None


def based_on(if_match: str | None) -> int:
    if not if_match:
        raise PreconditionRequired('send If-Match with the ETag of the version you changed, e.g. If-Match: "3"')
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise InvalidInput(
            'If-Match must be a policy ETag such as "3"', [{"field": "If-Match", "message": "is not a version"}]
        )
    return int(text)


def versioned(stored: "StoredPolicy", status: int = 200) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=PolicyVersion.model_validate(stored.as_json()).model_dump(mode="json"),
        headers={"ETag": f'"{stored.version}"'},
    )


@app.get("/policy", responses=documented(success=VERSIONED))
def get_policy() -> Response[Any]:
    return versioned(wiring.policy_store().current())


@app.put("/policy", responses=documented(400, 412, 428, success=VERSIONED))
def put_policy(change: Annotated[PolicyChange, Body()], if_match: IfMatch = None) -> Response[Any]:
    version = based_on(if_match)
    policy = parse_policy(change.policy)
    stored = wiring.policy_store().save(policy, version, caller(app.current_event), change.comment)
    logger.info("policy changed", extra={"version": stored.version, "based_on": version})
    return versioned(stored)


@app.post("/policy/validate", responses=documented(400))
def validate_policy(candidate: Annotated[Candidate, Body()]) -> ValidationReport:
    try:
        policy = parse_policy(candidate.policy)
    except InvalidInput as error:
        return ValidationReport.model_validate({"valid": False, "problems": error.fields})
    from shared.adapters.policy_store import diff, policy_document  # noqa: PLC0415

    current = wiring.policy_store().current()
    changes = diff(policy_document(current.policy), policy_document(policy))
    return ValidationReport.model_validate({"valid": True, "diff": changes})


@app.post("/policy/simulate", responses=documented(400))
@tracer.capture_method(capture_response=False)
def simulate_policy(request: Annotated[SimulationRequest, Body()]) -> SimulationReport:
    # The simulation (engine, log reads) is imported by this route only, not at every cold start.
    from shared.adapters.log_replay import LogReader  # noqa: PLC0415
    from shared.usecases.simulation import simulate_window  # noqa: PLC0415

    parse_policy(request.policy)  # every problem by its path under `policy`
    current = wiring.policy_store().current().policy
    started = time.perf_counter()
    report = simulate_window(
        request.model_dump(),
        current,
        wiring.current_clock().now(),
        LogReader(settings().decision_log_table, settings().stats_table),
        retention_days=settings().decision_retention_days,
    )
    seconds = round(time.perf_counter() - started, 3)
    logger.info("simulated", extra={"events": report["events"], "days": request.days, "seconds": seconds})
    return SimulationReport.model_validate({**report, "days": request.days, "seconds": seconds})


@app.post("/policy/simulations", responses=documented(400, 409, ok=202, success=JOB_STARTED))
def start_simulation(
    request: Annotated[SimulationJobRequest, Body()], idempotency_key: IdempotencyKey = None
) -> Response[Any]:
    """Any window up to the log's retention, as a job: its partitions replay in parallel."""
    from shared.usecases.simulation_job import check_key  # noqa: PLC0415

    key = check_key(idempotency_key) or check_key(request.client_token, "client_token")
    if idempotency_key and request.client_token and idempotency_key != request.client_token:
        raise InvalidInput(
            "send one idempotency key: the Idempotency-Key header and client_token differ",
            [{"field": "client_token", "message": "differs from the Idempotency-Key header"}],
        )
    parse_policy(request.policy)  # every problem by its path under `policy`
    started = wiring.simulation_job().start(
        request.model_dump(exclude={"client_token"}),
        wiring.policy_store().current().policy,
        caller=caller(app.current_event),
        key=key,
        retention_days=settings().decision_retention_days,
    )
    job = started.job
    logger.info("simulation job", extra={"job_id": job.job_id, "new_job": started.created, "days": request.days})
    body = SimulationJobStarted(job_id=job.job_id, status=job.status, status_url=status_url(job))  # type: ignore[arg-type]
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=body.model_dump(mode="json"))


@app.get("/policy/simulations/<job_id>", responses=documented(400, 404))
def get_simulation(job_id: Annotated[str, Path(max_length=64)]) -> SimulationJobStatus:
    job = wiring.simulation_job().get(job_id)
    return SimulationJobStatus.model_validate(
        {
            "job_id": job.job_id,
            "status": job.status,
            "days": job.request["days"],
            "created_at": job.created_at,
            "finished_at": job.finished_at,
            "progress": {
                "partitions_done": job.partitions_done,
                "partitions": job.partitions,
                "events_replayed": job.events_replayed,
            },
            "estimate": job.estimate,
            "result": job.result,
            "error": job.error,
        }
    )


def status_url(job: "Job") -> str:
    return f"/policy/simulations/{job.job_id}"


@app.get("/policy/versions", responses=documented(400))
def list_versions(
    limit: Annotated[int, Query(ge=1, le=100)] = 20, next_token: Annotated[str | None, Query()] = None
) -> VersionList:
    versions, token = wiring.policy_store().history(limit, next_token)
    items = [PolicyVersion.model_validate(v.as_json(with_policy=False)) for v in versions]
    return VersionList(items=items, next_token=token)


@app.get("/policy/versions/<version>", responses=documented(400, 404, success=VERSIONED))
def get_version(version: Annotated[int, Path(ge=0)]) -> Response[Any]:
    return versioned(wiring.policy_store().get(version))


@app.post("/policy/rollback", responses=documented(400, 404, 412, 428, success=VERSIONED))
def rollback(request: Annotated[RollbackRequest, Body()], if_match: IfMatch = None) -> Response[Any]:
    version = based_on(if_match)
    stored = wiring.policy_store().rollback(request.version, version, caller(app.current_event), request.comment)
    logger.info("policy rolled back", extra={"version": stored.version, "to": request.version})
    return versioned(stored)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
