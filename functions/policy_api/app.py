"""Marketing ops: versioned, validated contact policies, what-if simulation and rollback."""

import time
from datetime import timedelta
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
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
    SimulationReport,
    SimulationRequest,
    ValidationReport,
    VersionList,
)
from shared import wiring
from shared.adapters.policy_store import StoredPolicy, diff, policy_document
from shared.api.http import caller, documented, install_error_handlers
from shared.config import settings
from shared.domain.errors import InvalidInput, PreconditionRequired, field_problems
from shared.domain.policy import Policy
from shared.usecases.simulation import logged_outcomes, logged_since, simulate

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayRestResolver(enable_validation=True)
install_error_handlers(app)

# What the routes answering one version send: the version, and its ETag for the next If-Match.
VERSIONED: OpenAPIResponse = {
    "description": "The policy version.",
    "headers": {
        "ETag": {
            "description": 'The version, e.g. "3": send it as If-Match to change it.',
            "schema": {"type": "string"},
        }
    },
    "content": {content_types.APPLICATION_JSON: {"model": PolicyVersion}},
}

IfMatch = Annotated[
    str | None, Header(alias="if-match", description='The ETag of the version this change is based on, e.g. "3".')
]


def parse_policy(document: dict[str, Any]) -> Policy:
    """Validates a candidate policy; every problem is reported by its path under `policy`."""
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


def versioned(stored: StoredPolicy, status: int = 200) -> Response[Any]:
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
    current = wiring.policy_store().current()
    changes = diff(policy_document(current.policy), policy_document(policy))
    return ValidationReport.model_validate({"valid": True, "diff": changes})


@app.post("/policy/simulate", responses=documented(400))
@tracer.capture_method(capture_response=False)
def simulate_policy(request: Annotated[SimulationRequest, Body()]) -> SimulationReport:
    candidate = parse_policy(request.policy)
    current = wiring.policy_store().current().policy
    started = time.perf_counter()
    now = wiring.current_clock().now()
    events = list(logged_since(settings().decision_log_table, request.days, now))
    # Outcomes of the customers replayed, from the start of the range (their earlier responses
    # matter too, but only those the replayed follow-ups could have drawn are applied).
    customers = {e.event.customer_id for e in events}
    outcomes = logged_outcomes(settings().decision_log_table, customers, now - timedelta(days=request.days), now)
    report = simulate(
        events, current, candidate.model_copy(update={"version": -1}), request.sample_size, outcomes=outcomes
    )
    report["candidate"]["version"] = -1  # not stored yet
    seconds = round(time.perf_counter() - started, 3)
    logger.info("simulated", extra={"events": report["events"], "days": request.days, "seconds": seconds})
    return SimulationReport.model_validate({**report, "days": request.days, "seconds": seconds})


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
