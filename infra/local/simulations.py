"""Step Functions executions of the template's state machines, run locally.

moto stores a state machine and starts an execution (StartExecution answers as AWS does), but runs
nothing (shared/MOTO-NOTES.md). This runner does what the service would, from the definition moto
holds, which is the template's own: it finds each new RUNNING execution and walks its states -

- Task states invoke the template function the Resource names, its own handler with the state's
  Parameters as the event (the plan, merge and fail steps of a simulation job run in this process,
  as the gateway's functions do);
- the Map state's items (Distributed Map: one child execution each) run their ItemProcessor with
  the item of ItemSelector, at most MaxConcurrency(Path) at a time; the partition function's
  invocations run in a process pool (`pooled`), each worker a separate interpreter talking to the
  same moto endpoint, so partitions replay in parallel on every core as Lambda would run them;
- Retry (ErrorEquals, IntervalSeconds, MaxAttempts, BackoffRate, JitterStrategy FULL) and Catch
  (ResultPath, Next) as the States Language defines them; ToleratedFailurePercentage; ResultPath,
  `.$` parameters and the context object ($$.Map.Item.Value, $$.Execution.Name) as far as the
  template uses them. Anything else in a definition is refused by name rather than run wrongly.

moto keeps the execution RUNNING whatever happens (it has no way to end one): the runner remembers
what it ran, with the result, in `runs`. Tests inject a failure into an item's invocation with
`fail(...)`: the named shared.faults checkpoint raises inside the worker, exactly once per count.
"""

from __future__ import annotations

import copy
import json
import multiprocessing
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from infra.lambda_runtime import LambdaContext


class Target(Protocol):
    """A function of the template (infra.local.stack.Function)."""

    @property
    def logical_id(self) -> str: ...
    @property
    def handler(self) -> str: ...
    @property
    def timeout(self) -> float: ...

    def load(self) -> Callable[[dict[str, Any], Any], Any]: ...


class StateError(Exception):
    """A state failed with a States Language error name and cause."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


class InjectedFault(RuntimeError):
    """Raised at a shared.faults checkpoint by a test's fault (`SimulationRunner.fail`)."""


@dataclass
class Fault:
    function: str  # logical id of the function whose invocation fails
    point: str  # the shared.faults checkpoint that raises
    times: int = 1
    when: Callable[[dict[str, Any]], bool] = field(default=lambda event: True)


@dataclass
class ExecutionRun:
    arn: str
    status: str = "RUNNING"  # SUCCEEDED | FAILED
    output: Any = None
    error: str | None = None
    cause: str | None = None
    invocations: dict[str, int] = field(default_factory=dict)  # function -> invocations (attempts)
    failed_invocations: dict[str, int] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)


def _worker_start(environment: dict[str, str], log_path: str | None) -> None:
    """A pool process: the function's environment, talking to the stack's moto."""
    os.environ.update(environment)
    if log_path:
        sys.stdout = open(log_path, "a", buffering=1)  # noqa: SIM115 - the worker's stdout for its life


def _invoke(handler: str, logical: str, timeout: float, event: dict[str, Any], point: str | None) -> Any:
    """One Lambda invocation of `handler` (module.function) with `event`; what raises comes back as
    ("error", type, message) as Lambda reports errorType and errorMessage."""
    import importlib

    from shared import faults

    def inject(name: str) -> None:
        if name == point:
            raise InjectedFault(f"injected at {name}")

    module, name = handler.rsplit(".", 1)
    if point:
        faults.install(inject)
    try:
        answer = getattr(importlib.import_module(module), name)(event, LambdaContext(logical, timeout))
        return ("ok", answer)
    except Exception as error:  # a raising handler is a failed invocation, as in Lambda
        return ("error", type(error).__name__, str(error)[:2000])
    finally:
        if point:
            faults.install(None)


class _Inline(Executor):
    """Runs each submitted call at once, in the calling thread (in-process runs and tests)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:
            future.set_exception(error)
        return future


class SimulationRunner:
    """Runs the executions of the state machines it is given, as Step Functions would."""

    def __init__(
        self,
        stepfunctions: Any,
        state_machines: list[str],
        functions: Mapping[str, Target],
        *,
        pooled: frozenset[str] = frozenset(),
        workers: int | None = None,
        environment: dict[str, str] | None = None,
        log_path: str | None = None,
        interval_scale: float = 1.0,
    ) -> None:
        self.stepfunctions = stepfunctions
        self.state_machines = state_machines
        self.functions = functions  # Lambda ARN -> function
        self.pooled = pooled  # logical ids whose invocations run in the process pool
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self.environment = environment or {}
        self.log_path = log_path
        self.interval_scale = interval_scale  # tests shorten Retry's waits; 1.0 waits as AWS would
        self.runs: dict[str, ExecutionRun] = {}
        self.faults: list[Fault] = []
        self.last_error: str | None = None
        self._pool: Executor | None = None
        self._lock = threading.Lock()
        # Set by close(): no new invocation starts and no Retry waits, so a stop is prompt mid-job.
        self.stopping = threading.Event()

    # ---- what runs ------------------------------------------------------------------------------

    def fail(
        self, function: str, point: str, times: int = 1, when: Callable[[dict[str, Any]], bool] | None = None
    ) -> None:
        """The next `times` invocations of `function` (matching `when`) raise at checkpoint `point`."""
        with self._lock:
            self.faults.append(Fault(function, point, times, when or (lambda event: True)))

    def pending(self) -> list[str]:
        """Executions moto holds as RUNNING that this runner has not taken yet."""
        found = []
        for machine in self.state_machines:
            paginator = self.stepfunctions.get_paginator("list_executions")
            for page in paginator.paginate(stateMachineArn=machine, statusFilter="RUNNING"):
                found += [e["executionArn"] for e in page["executions"] if e["executionArn"] not in self.runs]
        return found

    def take(self, arn: str) -> ExecutionRun | None:
        with self._lock:
            if arn in self.runs:
                return None
            run = self.runs[arn] = ExecutionRun(arn)
            return run

    def run(self, arn: str) -> ExecutionRun:
        """Runs one execution to its end (taking it, if nobody has)."""
        run = self.take(arn) or self.runs[arn]
        described = self.stepfunctions.describe_execution(executionArn=arn)
        definition = json.loads(
            self.stepfunctions.describe_state_machine(stateMachineArn=described["stateMachineArn"])["definition"]
        )
        given = json.loads(described.get("input") or "{}")
        context = {"Execution": {"Id": arn, "Name": described["name"], "Input": given}}
        try:
            run.output = self._states(definition, given, context, run)
            run.status = "SUCCEEDED"
        except StateError as error:
            run.status, run.error, run.cause = "FAILED", error.error, error.cause
        except Exception as error:  # a bug of the runner or an unsupported definition
            run.status, run.error, run.cause = "FAILED", "States.Runtime", f"{type(error).__name__}: {error}"
            self.last_error = run.cause
        finally:
            run.done.set()
        return run

    def run_pending(self) -> list[ExecutionRun]:
        return [self.run(arn) for arn in self.pending() if self.take(arn) is not None]

    def runs_done(self, timeout: float = 60.0) -> bool:
        """True once every execution started so far has been taken and has ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.pending() and all(run.done.is_set() for run in list(self.runs.values())):
                return True
            time.sleep(0.1)
        return False

    def close(self) -> None:
        """Stops at once, mid-job too: a running partition is abandoned (its job stays running in
        moto, as an execution whose runner died would), never waited for."""
        self.stopping.set()
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            # shutdown(wait=True) waited for every running partition: a year-long simulation kept
            # `governor local` busy for minutes after SIGTERM. Python 3.11's pool cannot terminate
            # its workers publicly, so its processes are terminated here.
            workers = list(getattr(pool, "_processes", {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.join(timeout=5)

    # ---- the States Language, as far as the template uses it ----------------------------------

    def _states(self, machine: dict[str, Any], data: Any, context: dict[str, Any], run: ExecutionRun) -> Any:
        states, name = machine["States"], machine["StartAt"]
        while True:
            state = states[name]
            kind = state["Type"]
            try:
                if kind == "Succeed":
                    return data
                if kind == "Fail":
                    raise StateError(state.get("Error", "States.Fail"), state.get("Cause", ""))
                if kind == "Task":
                    result = self._task(state, data, context, run)
                elif kind == "Map":
                    result = self._map(state, data, context, run)
                elif kind == "Pass":
                    result = state.get("Result", data)
                else:
                    raise ValueError(f"state type {kind} does not run locally")
                data = _result_at(data, result, state.get("ResultPath", "$"))
            except StateError as error:
                catcher = next((c for c in state.get("Catch", []) if _matches(c["ErrorEquals"], error.error)), None)
                if catcher is None:
                    raise
                caught = {"Error": error.error, "Cause": error.cause}
                data = _result_at(data, caught, catcher.get("ResultPath", "$"))
                name = catcher["Next"]
                continue
            if state.get("End"):
                return data
            name = state["Next"]

    def _task(self, state: dict[str, Any], data: Any, context: dict[str, Any], run: ExecutionRun) -> Any:
        target = self.functions.get(state["Resource"])
        if target is None:
            raise ValueError(f"Task Resource {state['Resource']} is no function of the template")
        event = _parameters(state["Parameters"], data, context) if "Parameters" in state else data
        attempts: dict[int, int] = {}
        while True:
            try:
                return self._invoke(target, event, run)
            except StateError as error:
                retriers = state.get("Retry", [])
                index = next((i for i, r in enumerate(retriers) if _matches(r["ErrorEquals"], error.error)), None)
                if index is None:
                    raise
                retrier, done = retriers[index], attempts.get(index, 0)
                if done >= retrier.get("MaxAttempts", 3):
                    raise
                attempts[index] = done + 1
                wait = retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** done
                if retrier.get("JitterStrategy") == "FULL":
                    wait = random.uniform(0, wait)  # noqa: S311 - backoff jitter, not a secret
                if self.stopping.wait(wait * self.interval_scale):
                    raise

    def _invoke(self, target: Target, event: dict[str, Any], run: ExecutionRun) -> Any:
        if self.stopping.is_set():
            raise StateError("States.Runtime", "the local stack is stopping")
        point = self._fault_for(target.logical_id, event)
        with self._lock:
            run.invocations[target.logical_id] = run.invocations.get(target.logical_id, 0) + 1
        executor = self._process_pool() if target.logical_id in self.pooled else _Inline()
        answer = executor.submit(_invoke, target.handler, target.logical_id, target.timeout, event, point).result()
        if answer[0] == "ok":
            return answer[1]
        _, kind, message = answer
        with self._lock:
            run.failed_invocations[target.logical_id] = run.failed_invocations.get(target.logical_id, 0) + 1
        raise StateError(kind, json.dumps({"errorType": kind, "errorMessage": message}))

    def _fault_for(self, function: str, event: dict[str, Any]) -> str | None:
        with self._lock:
            for fault in self.faults:
                if fault.function == function and fault.times > 0 and fault.when(event):
                    fault.times -= 1
                    return fault.point
        return None

    def _map(self, state: dict[str, Any], data: Any, context: dict[str, Any], run: ExecutionRun) -> list[Any]:
        items = _path(data, state.get("ItemsPath", "$"), context)
        if not isinstance(items, list):
            raise StateError("States.Runtime", f"ItemsPath {state.get('ItemsPath')} is not an array")
        limit = state.get("MaxConcurrency") or (
            _path(data, state["MaxConcurrencyPath"], context) if "MaxConcurrencyPath" in state else 0
        )
        processor = state.get("ItemProcessor") or state["Iterator"]
        selector = state.get("ItemSelector")

        def one(index: int, item: Any) -> Any:
            child = {**context, "Map": {"Item": {"Index": index, "Value": item}}}
            given = _parameters(selector, data, child) if selector is not None else item
            return self._states(processor, given, child, run)

        threads = max(1, min(int(limit) or len(items) or 1, len(items) or 1))
        if not self.pooled:
            threads = 1  # items invoked in this process run one at a time: a fault hook is process-wide
        outputs: list[Any] = [None] * len(items)
        failures: list[StateError] = []
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="map-item") as items_pool:
            futures = {items_pool.submit(one, i, item): i for i, item in enumerate(items)}
            for future, index in futures.items():
                try:
                    outputs[index] = future.result()
                except StateError as error:
                    failures.append(error)
        tolerated = float(state.get("ToleratedFailurePercentage", 0))
        if failures and (not items or 100.0 * len(failures) / len(items) > tolerated):
            first = failures[0]
            raise StateError(
                "States.ExceedToleratedFailureThreshold",
                f"{len(failures)} of {len(items)} items failed (first: {first.error}: {first.cause})",
            )
        return outputs

    def _process_pool(self) -> Executor:
        with self._lock:
            if self.stopping.is_set():  # closed: never a new pool that nobody would shut down
                raise StateError("States.Runtime", "the local stack is stopping")
            if self._pool is None:
                # spawn, not fork: the stack's process runs moto's and the gateway's threads, whose
                # locks a forked child would inherit mid-use.
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_worker_start,
                    initargs=(self.environment, self.log_path),
                )
            return self._pool


class SimulationLoop(threading.Thread):
    """Takes new executions as they start (one ListExecutions every `every` seconds), each on a thread."""

    def __init__(self, runner: SimulationRunner, every: float = 0.5) -> None:
        super().__init__(name="state-machines", daemon=True)
        self.runner = runner
        self.every = every
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.every):
            try:
                for arn in self.runner.pending():
                    if self.runner.take(arn) is not None:
                        threading.Thread(target=self.runner.run, args=(arn,), name="execution", daemon=True).start()
            except Exception as error:  # the emulator going away while stopping, mostly
                self.runner.last_error = f"{type(error).__name__}: {error}"


def for_stack(resources: Any, functions: Mapping[str, Target], log_path: str | None = None) -> SimulationRunner | None:
    """The runner of the local stack: every state machine provisioned from the template; the
    functions a Map's items invoke run in the process pool, with their own environment."""
    machines = [resources.arns[n] for n, kind in resources.types.items() if kind == "AWS::StepFunctions::StateMachine"]
    if not machines:
        return None
    import boto3

    stepfunctions = boto3.client("stepfunctions")
    by_arn = {resources.get_att(name, "Arn"): function for name, function in functions.items()}
    pooled: set[str] = set()
    for machine in machines:
        definition = json.loads(stepfunctions.describe_state_machine(stateMachineArn=machine)["definition"])
        pooled |= {by_arn[arn].logical_id for arn in item_resources(definition) if arn in by_arn}
    shared = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "POWERTOOLS_"))}
    environment = {**shared, **{k: v for name in sorted(pooled) for k, v in resources.environment(name).items()}}
    return SimulationRunner(
        stepfunctions, machines, by_arn, pooled=frozenset(pooled), environment=environment, log_path=log_path
    )


def item_resources(machine: dict[str, Any], inside_map: bool = False) -> set[str]:
    """The Resource of every Task run as a Map's item (its child executions), at any depth."""
    found: set[str] = set()
    for state in machine.get("States", {}).values():
        if state.get("Type") == "Task" and inside_map:
            found.add(state["Resource"])
        if state.get("Type") == "Map":
            found |= item_resources(state.get("ItemProcessor") or state.get("Iterator") or {}, True)
    return found


# ---- paths, parameters and results (JSONPath as the template uses it) ---------------------------


def _path(data: Any, path: str, context: dict[str, Any]) -> Any:
    root, rest = (context, path[2:]) if path.startswith("$$") else (data, path[1:])
    value = root
    for part in [p for p in rest.split(".") if p]:
        if not isinstance(value, dict) or part not in value:
            raise StateError("States.Runtime", f"the path {path} was not found in the input")
        value = value[part]
    return value


def _parameters(template: Any, data: Any, context: dict[str, Any]) -> Any:
    if isinstance(template, dict):
        found = {}
        for key, value in template.items():
            if key.endswith(".$"):
                found[key[:-2]] = _path(data, value, context)
            else:
                found[key] = _parameters(value, data, context)
        return found
    if isinstance(template, list):
        return [_parameters(v, data, context) for v in template]
    return template


def _result_at(data: Any, result: Any, path: str | None) -> Any:
    if path is None:
        return data
    if path == "$":
        return result
    merged = copy.deepcopy(data) if isinstance(data, dict) else {}
    parts = [p for p in path[2:].split(".") if p]
    node = merged
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = result
    return merged


def _matches(names: list[str], error: str) -> bool:
    if "States.ALL" in names or error in names:
        return True
    return "States.TaskFailed" in names and error != "States.Timeout"
