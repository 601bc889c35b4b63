"""The simulation job end to end on `governor local` (issue 12 goal 4): started over HTTP or with
`governor policy simulate --job`, its state machine run by the stack (moto runs none) with the
partitions in a process pool talking to moto's server, a failed partition retried as the state
machine's Retry does, and the answer equal to the synchronous one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cli import main as cli_main
from cli.api import Api, ApiError
from infra.local.stack import LocalGovernor
from shared.usecases.simulation_job import PARTITION_REPLAYED
from tests.stack.test_local_stack import call

pytestmark = pytest.mark.server

CANDIDATE = {"survey_sample_rate": 0.5}
EVENTS = 8


@pytest.fixture(scope="module")
def logged(stack: LocalGovernor) -> LocalGovernor:
    """A few customers' decisions in the stack's log, through POST /events and the queue."""
    now = datetime.now(UTC)
    details = [
        {
            "event_id": f"sj-e{i}",
            "interaction_id": f"sj-i{i}",
            "customer_id": f"sj-c{i % 5}",
            "channel": "chat",
            "closed_at": (now - timedelta(minutes=30 - i)).isoformat(),
            "outcome": ("resolved", "unresolved")[i % 2],
        }
        for i in range(EVENTS)
    ]
    status, answer = call(stack, "POST", "/events", {"events": details})
    assert (status, answer["accepted"]) == (202, EVENTS)
    assert stack.wait_drained()
    assert stack.simulations is not None
    stack.simulations.interval_scale = 0.01  # the Retry's backoff, shortened
    return stack


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """An answer without what depends on when it was asked (its timing, the window's end)."""
    window = {k: v for k, v in report["window"].items() if k != "end"}
    return {**{k: v for k, v in report.items() if k != "seconds"}, "window": window}


def test_a_job_from_the_command_line_shows_progress_retries_a_failed_partition_and_answers_like_simulate(
    logged: LocalGovernor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = logged
    assert stack.simulations is not None
    # Given the synchronous answer for a candidate over the last day
    status, synchronous = call(stack, "POST", "/policy/simulate", {"policy": CANDIDATE, "days": 1})
    assert (status, synchronous["events"]) == (200, EVENTS)
    # And partition 3's first invocation will die after its replay, before it records anything
    stack.simulations.fail("SimulationPartitionFunction", PARTITION_REPLAYED, when=lambda e: e["partition"] == 3)
    policy = tmp_path / "candidate.json"
    policy.write_text(json.dumps(CANDIDATE))
    # When marketing ops run the simulation as a job from the command line
    code = cli_main.main(
        ["policy", "--url", stack.url, "simulate", str(policy), "--days", "1", "--job", "--json", "--poll", "0.2"]
    )
    out, err = capsys.readouterr()
    # Then it waits for the job, showing its progress on stderr, and prints the synchronous answer
    assert code == 0, out
    assert "started" in err and "16/16 partitions" in err and f"{EVENTS} events replayed" in err
    assert comparable(json.loads(out)) == comparable(synchronous)
    # And the stack ran its state machine: 16 partitions in the process pool, partition 3 twice
    (run,) = stack.simulations.runs.values()
    assert run.status == "SUCCEEDED", run.cause
    assert run.invocations["SimulationPartitionFunction"] == 17
    assert run.failed_invocations == {"SimulationPartitionFunction": 1}
    # And the job says it is done: every partition and every event counted once
    job_id = run.arn.rsplit(":", 1)[1]
    status, job = call(stack, "GET", f"/policy/simulations/{job_id}")
    assert (status, job["status"]) == (200, "succeeded")
    assert job["progress"] == {"partitions_done": 16, "partitions": 16, "events_replayed": EVENTS}
    assert job["estimate"]["estimate"]["partitions"] == [0]
    # And /health counts the execution
    assert call(stack, "GET", "/health")[1]["state_machines"]["succeeded"] >= 1


def test_over_http_a_job_is_202_with_its_status_url_an_unknown_one_404_and_a_reused_key_409(
    logged: LocalGovernor,
) -> None:
    api = Api(url=logged.url)
    # When a job is started over HTTP with an idempotency key, then started again with it
    first, _ = api.call("POST", "/policy/simulations", {"policy": CANDIDATE, "days": 2}, {"Idempotency-Key": "sj-k1"})
    again, _ = api.call("POST", "/policy/simulations", {"policy": CANDIDATE, "days": 2}, {"Idempotency-Key": "sj-k1"})
    # Then both name one job, followed at its status URL until it ends
    assert first["job_id"] == again["job_id"] and first["status_url"].endswith(first["job_id"])
    assert logged.simulations is not None
    assert logged.simulations.runs_done(timeout=120)
    status, job = call(logged, "GET", first["status_url"])
    assert (status, job["status"], job["days"]) == (200, "succeeded", 2)
    # When the key is reused for another window, the start is refused with 409
    with pytest.raises(ApiError) as refused:
        api.call("POST", "/policy/simulations", {"policy": CANDIDATE, "days": 3}, {"Idempotency-Key": "sj-k1"})
    assert (refused.value.status, refused.value.body["code"]) == (409, "IDEMPOTENCY_KEY_REUSED")
    # And a job nobody started is 404
    status, missing = call(logged, "GET", "/policy/simulations/sim_aaaaaaaaaaaaaaaaaaaaaaaaaa")
    assert (status, missing["code"]) == (404, "NOT_FOUND")
