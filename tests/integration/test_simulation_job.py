"""The asynchronous simulation job (POST /policy/simulations) through its handlers on moto: the
policy API starts it, and the template's state machine (read back from moto, as the local stack
runs it: infra/local/simulations.py) runs its plan, partition and merge steps in this process."""

from __future__ import annotations

import json
import os
import urllib.parse
from datetime import timedelta
from typing import Any

import boto3
import pytest

from infra.lambda_runtime import LambdaContext, api_gateway_event
from infra.local.simulations import SimulationRunner
from infra.local.stack import functions
from shared import wiring
from shared.adapters.clock import EventClock, FixedClock
from shared.usecases.simulation_job import PARTITION_RECORDED, PARTITION_REPLAYED
from tests.conftest import NOW, detail, drain, put_events

FUNCTIONS = ("PolicyApiFunction", "DecideFunction", "SimulationJobFunction", "SimulationPartitionFunction")
CANDIDATE = {"survey_sample_rate": 0.5}


@pytest.fixture(autouse=True)
def environment(aws: Any) -> None:
    for function in FUNCTIONS:
        os.environ.update(aws.environment(function))
    wiring.reset()
    wiring.use_clock(FixedClock(NOW))


@pytest.fixture
def logged(aws: Any) -> None:
    """12 decisions of 8 customers in the log over the last day, each decided as it closed."""
    wiring.use_clock(EventClock())  # each event decided as of its own close, as `governor replay` does
    details = [
        detail(
            event_id=f"evt-{i}",
            interaction_id=f"int-{i}",
            customer_id=f"cust-{i % 8}",
            outcome=outcome,
            closed_at=(NOW - timedelta(hours=23 - 2 * i)).isoformat(),
        )
        for i, outcome in enumerate(["resolved", "unresolved", "resolved", "escalated"] * 3)
    ]
    put_events(aws, details)
    drain(aws)
    wiring.use_clock(FixedClock(NOW))


@pytest.fixture
def runner(aws: Any) -> SimulationRunner:
    """Step Functions for the template's state machine, in this process (moto runs nothing)."""
    every = functions()
    by_arn = {aws.get_att(name, "Arn"): function for name, function in every.items()}
    return SimulationRunner(
        boto3.client("stepfunctions"), [aws.arns["SimulationStateMachine"]], by_arn, interval_scale=0
    )


def call(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    from functions.policy_api.app import handler

    route = path.split("?", maxsplit=1)[0]
    prefix = "/policy/simulations/"
    resource = "/policy/simulations/{job_id}" if route.startswith(prefix) else route
    params = {"job_id": urllib.parse.unquote(route[len(prefix) :])} if route.startswith(prefix) else None
    event = api_gateway_event(
        method,
        route,
        resource=resource,
        path_parameters=params,
        headers=headers or {},
        body=json.dumps(body) if body is not None else None,
    )
    answer = handler(event, LambdaContext("policy-api"))
    return answer["statusCode"], json.loads(answer["body"])


def without_timing(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "seconds"}


def executions(aws: Any) -> list[dict[str, Any]]:
    answer = boto3.client("stepfunctions").list_executions(stateMachineArn=aws.arns["SimulationStateMachine"])
    return list(answer["executions"])


@pytest.mark.usefixtures("logged")
def test_a_job_starts_shows_its_progress_and_answers_what_the_synchronous_simulation_answers(
    aws: Any, runner: SimulationRunner
) -> None:
    # Given the synchronous answer for a candidate over the last 3 days
    status, synchronous = call("POST", "/policy/simulate", {"policy": CANDIDATE, "days": 1})
    assert status == 200 and synchronous["events"] == 12
    # When the same simulation is started as a job
    status, started = call("POST", "/policy/simulations", {"policy": CANDIDATE, "days": 1})
    # Then it is accepted with its id and where to follow it, and one execution runs it
    assert status == 202
    assert started["status"] == "running"
    assert started["status_url"] == f"/policy/simulations/{started['job_id']}"
    assert [e["name"] for e in executions(aws)] == [started["job_id"]]
    # And before any step ran, nothing is done yet
    status, before = call("GET", started["status_url"])
    assert (status, before["status"], before["progress"]) == (
        200,
        "running",
        {"partitions_done": 0, "partitions": 16, "events_replayed": 0},
    )
    assert before["estimate"] is None and before["result"] is None
    # When its state machine runs (plan, 16 partitions, merge)
    (run,) = runner.run_pending()
    assert run.status == "SUCCEEDED", run.cause
    assert run.invocations == {"SimulationJobFunction": 2, "SimulationPartitionFunction": 16}
    # Then the job has succeeded, every partition counted once, every logged event replayed once
    status, done = call("GET", started["status_url"])
    assert (status, done["status"]) == (200, "succeeded")
    assert done["progress"] == {"partitions_done": 16, "partitions": 16, "events_replayed": 12}
    # And its answer is the synchronous one (the same window, replay and counts; timing aside)
    assert without_timing(done["result"]) == without_timing(synchronous)
    # And the estimate from the sample partition says which share of the customers it scaled up
    estimate = done["estimate"]["estimate"]
    assert estimate["partitions"] == [0]
    assert estimate["share_of_customers"] == 1 / 16
    assert set(estimate["standard_error"]) == set(estimate["interval_95"])
    # And a repeated merge, or a failure caught late, changes nothing: the first end of a job wins
    from functions.simulation_job.app import handler as job_step

    for step in ({"step": "merge"}, {"step": "fail", "error": {"Error": "States.Timeout"}}):
        answer = job_step({**step, "job_id": started["job_id"]}, LambdaContext("simulation-job"))
        assert (answer["status"], answer["changed"]) == ("succeeded", False)
    assert call("GET", started["status_url"]) == (200, done)


@pytest.mark.usefixtures("logged")
def test_a_partition_that_dies_after_recording_is_retried_and_counted_once(aws: Any, runner: SimulationRunner) -> None:
    # Given partition 5's first invocation dies after its counts were recorded (its answer is lost)
    runner.fail("SimulationPartitionFunction", PARTITION_RECORDED, when=lambda event: event["partition"] == 5)
    # And partition 9's first invocation dies after its replay, before anything was written
    runner.fail("SimulationPartitionFunction", PARTITION_REPLAYED, when=lambda event: event["partition"] == 9)
    _, synchronous = call("POST", "/policy/simulate", {"policy": CANDIDATE, "days": 1})
    _, started = call("POST", "/policy/simulations", {"policy": CANDIDATE, "days": 1})
    # When the job runs
    (run,) = runner.run_pending()
    # Then both partitions were retried by the state machine's Retry, and the job succeeded
    assert run.status == "SUCCEEDED", run.cause
    assert run.invocations["SimulationPartitionFunction"] == 18
    assert run.failed_invocations == {"SimulationPartitionFunction": 2}
    # And nothing was counted twice: every event replayed once, the answer as the synchronous one
    _, done = call("GET", started["status_url"])
    assert done["progress"] == {"partitions_done": 16, "partitions": 16, "events_replayed": 12}
    assert without_timing(done["result"]) == without_timing(synchronous)


@pytest.mark.usefixtures("logged")
def test_a_partition_that_keeps_failing_fails_the_job_saying_why(runner: SimulationRunner) -> None:
    # Given partition 2 fails on every attempt (its first and the Retry's three)
    runner.fail("SimulationPartitionFunction", PARTITION_REPLAYED, times=4, when=lambda e: e["partition"] == 2)
    _, started = call("POST", "/policy/simulations", {"policy": CANDIDATE, "days": 1})
    # When the job runs
    (run,) = runner.run_pending()
    # Then the Map tolerates no failure: the Catch marked the job failed, and the execution failed
    assert (run.status, run.error) == ("FAILED", "SimulationFailed")
    status, failed = call("GET", started["status_url"])
    assert (status, failed["status"], failed["result"]) == (200, "failed", None)
    assert failed["error"]["error"] == "States.ExceedToleratedFailureThreshold"
    assert "InjectedFault" in failed["error"]["message"]
    # And the partitions that did finish are counted, not the failed one
    assert failed["progress"]["partitions_done"] == 15


def test_the_same_idempotency_key_answers_the_same_job_and_another_request_with_it_is_409(aws: Any) -> None:
    body = {"policy": CANDIDATE, "days": 1}
    # When a start is sent twice with one Idempotency-Key
    first = call("POST", "/policy/simulations", body, {"Idempotency-Key": "sim-42"})
    again = call("POST", "/policy/simulations", body, {"Idempotency-Key": "sim-42"})
    # Then both answer the same job, and only one execution was started
    assert first[0] == again[0] == 202
    assert first[1]["job_id"] == again[1]["job_id"]
    assert len(executions(aws)) == 1
    # And the key sent as client_token (for clients without headers) names the same job
    token = call("POST", "/policy/simulations", {**body, "client_token": "sim-42"})
    assert token[1]["job_id"] == first[1]["job_id"]
    # When the key is reused for a different simulation
    status, refused = call("POST", "/policy/simulations", {**body, "days": 7}, {"Idempotency-Key": "sim-42"})
    # Then it is refused with 409, naming the key, and no job or execution is added
    assert (status, refused["code"]) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert refused["fields"][0]["field"] == "Idempotency-Key"
    assert len(executions(aws)) == 1
    # And another caller's same key is another job
    other = call("POST", "/policy/simulations", body, {"Idempotency-Key": "sim-42", "X-Governor-Author": "lee"})
    assert other[0] == 202 and other[1]["job_id"] != first[1]["job_id"]


def test_an_unknown_job_is_404() -> None:
    for job_id in ("sim_aaaaaaaaaaaaaaaaaaaaaaaaaa", "not-a-job", "sim_%2F..%2Fx"):
        status, body = call("GET", f"/policy/simulations/{job_id}")
        assert (status, body["code"]) == (404, "NOT_FOUND")


def test_a_bad_policy_or_a_window_past_retention_is_refused_by_field_and_starts_nothing(aws: Any) -> None:
    status, body = call("POST", "/policy/simulations", {"policy": {"survey_sample_rate": 2}, "days": 1})
    assert (status, [f["field"] for f in body["fields"]]) == (400, ["policy.survey_sample_rate"])
    status, body = call("POST", "/policy/simulations", {"policy": {}, "days": 401})
    assert (status, [f["field"] for f in body["fields"]]) == (400, ["days"])
    status, body = call("POST", "/policy/simulations", {"policy": {}, "days": 1}, {"Idempotency-Key": "has space"})
    assert (status, [f["field"] for f in body["fields"]]) == (400, ["Idempotency-Key"])
    assert executions(aws) == []


def test_a_window_longer_than_the_synchronous_limit_is_accepted_as_a_job(aws: Any) -> None:
    # Given a window the synchronous route refuses (over 90 days)
    status, refused = call("POST", "/policy/simulate", {"policy": CANDIDATE, "days": 200})
    assert (status, [f["field"] for f in refused["fields"]]) == (400, ["days"])
    # When it is started as a job, it is accepted and its execution started
    status, started = call("POST", "/policy/simulations", {"policy": CANDIDATE, "days": 200})
    assert (status, started["status"]) == (202, "running")
    assert [e["name"] for e in executions(aws)] == [started["job_id"]]
    # And its status names its window
    assert call("GET", started["status_url"])[1]["days"] == 200
