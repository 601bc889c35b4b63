"""The simulation job's state machine as SAM deploys it: a definition that parses, names only
functions of the template, fans the partitions out on a Distributed Map with a Retry, and marks the
job failed on any failure. (moto runs no execution: infra/local/simulations.py runs this definition
locally, and tests/integration/test_simulation_job.py runs it end to end.)"""

from __future__ import annotations

import json
from typing import Any

from infra import template

RESOURCES = template.translated()["Resources"]
MACHINE = RESOURCES["SimulationStateMachine"]["Properties"]


def definition() -> dict[str, Any]:
    """The definition string as CloudFormation builds it (the translator's Fn::Join of lines)."""
    text = MACHINE["DefinitionString"]
    if isinstance(text, dict):
        separator, lines = text["Fn::Join"]
        assert all(isinstance(line, str) for line in lines), "the definition holds an unresolved intrinsic"
        text = separator.join(lines)
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def every_state(machine: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, state in machine["States"].items():
        found.append((name, state))
        if state["Type"] == "Map":
            found += every_state(state["ItemProcessor"])
    return found


def test_the_definition_parses_and_each_state_leads_to_a_state_of_its_own() -> None:
    machine = definition()
    for states in (machine, machine["States"]["Partitions"]["ItemProcessor"]):
        assert states["StartAt"] in states["States"]
        for name, state in states["States"].items():
            for target in [state.get("Next"), *(c["Next"] for c in state.get("Catch", []))]:
                assert target is None or target in states["States"], f"{name} leads to {target}"
            assert state.get("End") or state.get("Next") or state["Type"] in ("Succeed", "Fail"), name


def test_every_task_invokes_a_function_of_the_template() -> None:
    # Given the substitutions CloudFormation puts into the definition
    substitutions = MACHINE["DefinitionSubstitutions"]
    tasks = [(name, state) for name, state in every_state(definition()) if state["Type"] == "Task"]
    assert {name for name, _ in tasks} == {"Plan", "Partition", "Merge", "MarkFailed"}
    for name, state in tasks:
        # Then each Task's Resource is a substitution naming a Lambda function of the template
        resource = state["Resource"]
        assert resource.startswith("${") and resource.endswith("}"), name
        target = substitutions[resource[2:-1]]["Fn::GetAtt"]
        logical = target[0] if isinstance(target, list) else target.split(".")[0]
        assert RESOURCES[logical]["Type"] == "AWS::Lambda::Function", f"{name} invokes {logical}"
        # And the state machine's role may invoke it
        role = json.dumps(RESOURCES["SimulationStateMachineRole"]["Properties"]["Policies"])
        assert json.dumps({"Ref": logical}) in role, f"the role may not invoke {logical}"


def test_partitions_fan_out_on_a_distributed_map_that_retries_each_and_tolerates_no_failure() -> None:
    partitions = definition()["States"]["Partitions"]
    assert partitions["Type"] == "Map"
    assert partitions["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert partitions["ToleratedFailurePercentage"] == 0
    # The concurrency is the template's parameter, through the plan step's answer
    assert partitions["MaxConcurrencyPath"] == "$.job.max_concurrency"
    assert RESOURCES["SimulationJobFunction"]["Properties"]["Environment"]["Variables"][
        "SIMULATION_MAX_CONCURRENCY"
    ] == {"Ref": "SimulationMaxConcurrency"}
    (task,) = partitions["ItemProcessor"]["States"].values()
    (retry,) = task["Retry"]
    assert retry["MaxAttempts"] >= 2 and retry["BackoffRate"] > 1 and retry["IntervalSeconds"] >= 1
    # A Distributed Map starts child executions of its own state machine: the role may, on it only
    statements = [
        s
        for p in RESOURCES["SimulationStateMachineRole"]["Properties"]["Policies"]
        for s in p["PolicyDocument"]["Statement"]
        if "states:StartExecution" in s["Action"]
    ]
    assert [s["Resource"]["Fn::Sub"].rsplit(":", 1)[1] for s in statements] == [
        "followup-governor-simulations-${Stage}"
    ]
    assert MACHINE["StateMachineName"] == {"Fn::Sub": "followup-governor-simulations-${Stage}"}


def test_any_failure_marks_the_job_failed_and_fails_the_execution() -> None:
    states = definition()["States"]
    for name in ("Plan", "Partitions", "Merge"):
        (catch,) = states[name]["Catch"]
        assert (catch["ErrorEquals"], catch["Next"]) == (["States.ALL"], "MarkFailed"), name
    assert states["MarkFailed"]["Parameters"]["step"] == "fail"
    assert states[states["MarkFailed"]["Next"]]["Type"] == "Fail"


def grants(role: str) -> list[tuple[str, Any]]:
    """Every (action, resource) an inline policy of `role` allows."""
    return [
        (action, statement["Resource"])
        for policy in RESOURCES[role]["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        for action in statement["Action"]
    ]


def test_the_policy_api_may_start_the_job_and_nothing_else_of_the_state_machine() -> None:
    variables = RESOURCES["PolicyApiFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["SIMULATION_STATE_MACHINE_ARN"] == {"Ref": "SimulationStateMachine"}
    granted = grants("PolicyApiFunctionRole")
    assert [(a, r) for a, r in granted if a.startswith("states:")] == [
        ("states:StartExecution", {"Ref": "SimulationStateMachine"})
    ]


def test_the_plan_sizes_partitions_to_the_partition_function_it_runs_on() -> None:
    from shared.usecases import simulation

    # Given the partition function as deployed: the plan's sizing assumes its memory and timeout
    function = RESOURCES["SimulationPartitionFunction"]["Properties"]
    assert function["MemorySize"] == simulation.PARTITION_MEMORY_MB
    assert function["Timeout"] == simulation.PARTITION_TIMEOUT_SECONDS
    # And the plan step may read the daily totals it sizes the plan from (one Query a day)
    stats = {"Fn::GetAtt": ["StatsTable", "Arn"]}
    assert [(a, r) for a, r in grants("SimulationJobFunctionRole") if r == stats] == [("dynamodb:Query", stats)]
