"""`governor local`: the whole governor on the embedded AWS emulator, talked to like production.

- moto in server mode on 127.0.0.1, with every data resource of template.yaml (infra.local.provision);
- one poller per SQS event source of the template, calling its handler with real SQS batch
  events and honouring partial batch responses (failed records come back after a short backoff,
  and SQS moves them to the dead-letter queue after maxReceiveCount);
- an HTTP gateway that turns each request into an API Gateway proxy event for the function the
  template routes it to: every route of the template works, with no code per route;
- one ticker per rate() schedule of the template (moto stores schedules but never fires them),
  calling its handler every period, as EventBridge Scheduler would;
- the decision log's stream read as Lambda's event source mapping would, through the log stream
  function (infra.local.streams): what is committed gets published and counted; under the event
  clock each decide batch's records are handled before the next batch is decided;
- EventBridge Scheduler's one-time schedules (held follow-ups) fired through the template's own
  target function, which moto never does (infra.local.schedules): by a background loop under the
  wall clock; under the event clock before anything happening later is processed, and on
  POST /local/advance {"to": RFC 3339}, a local-only route (never in template.yaml);
- GET /health: moto up, resources present, pollers alive, queue depths.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

import boto3

from infra import template
from infra.lambda_runtime import LambdaContext, acknowledge, api_gateway_event, receive_batch, sqs_event
from infra.local import console_http, emulator, persistence, state_file
from infra.local.authz import Authorizer, Caller, Refusal, create_role_users
from infra.local.emulator import free_port
from infra.local.provision import provision
from infra.local.schedules import ScheduleRunner, WallScheduleLoop
from infra.local.simulations import SimulationLoop, SimulationRunner, for_stack
from infra.local.streams import StreamThread, log_stream
from shared import wiring
from shared.adapters import decision_log
from shared.adapters.clock import EventClock, WallClock
from shared.adapters.policy_store import PolicyStore

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
DEFAULT_PORT = 8765
LOG_FILE = ROOT / ".local" / "functions.log"
RETRY_BACKOFF_SECONDS = 2  # locally, a failed record comes back after this instead of the visibility timeout

Handler = Callable[[dict[str, Any], Any], Any]


class _GatewayServer(ThreadingHTTPServer):
    """The gateway's server, quiet when a client hangs up mid-request (`governor export | head`
    closes its connection): that is the client's choice, not an error worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # reset, broken pipe, aborted
            return
        super().handle_error(request, client_address)


class PortBusy(Exception):
    pass


@dataclass(frozen=True)
class Function:
    logical_id: str
    handler: str
    timeout: float

    def load(self) -> Handler:
        module, name = self.handler.rsplit(".", 1)
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: Function

    @property
    def pattern(self) -> re.Pattern[str]:
        # re.escape turns {name} (and greedy {name+}) into \{name\}; each becomes a named group.
        regex = re.sub(r"\\\{([A-Za-z0-9_]+)(?:\\\+)?\\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        return re.compile(f"^{regex}$")


@dataclass(frozen=True)
class QueueSource:
    queue: str  # logical id
    function: Function
    batch_size: int


def functions() -> dict[str, Function]:
    raw = template.raw()
    default_timeout = raw.get("Globals", {}).get("Function", {}).get("Timeout", 3)
    return {
        name: Function(name, r["Properties"]["Handler"], float(r["Properties"].get("Timeout", default_timeout)))
        for name, r in raw["Resources"].items()
        if r["Type"] == "AWS::Serverless::Function"
    }


def _events(kind: str) -> Iterator[tuple[Function, dict[str, Any]]]:
    every = functions()
    for name, resource in template.raw()["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == kind:
                yield every[name], event["Properties"]


def routes() -> list[Route]:
    """Every API route the template declares, with the function it reaches."""
    return [Route(p["Method"].upper(), p["Path"], f) for f, p in _events("Api")]


def queue_sources() -> list[QueueSource]:
    found = []
    for function, props in _events("SQS"):
        queue = props["Queue"]["Fn::GetAtt"]
        logical = queue[0] if isinstance(queue, list) else queue.split(".")[0]
        found.append(QueueSource(logical, function, int(props.get("BatchSize", 10))))
    return found


@dataclass(frozen=True)
class ScheduledSource:
    function: Function
    every: float  # seconds


_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def scheduled_sources() -> list[ScheduledSource]:
    """Every rate() schedule of the template with the function it invokes."""
    found = []
    for kind in ("ScheduleV2", "Schedule"):
        for function, props in _events(kind):
            expression = str(props.get("ScheduleExpression") or props.get("Schedule") or "")
            match = _RATE.fullmatch(expression.strip())
            if not match:
                raise ValueError(f"{function.logical_id}: only rate() schedules run locally, not {expression!r}")
            every = int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]
            found.append(ScheduledSource(function, float(every)))
    return found


class Ticker(threading.Thread):
    """EventBridge Scheduler for one function: invokes its handler every `every` seconds."""

    def __init__(self, source: ScheduledSource, every: float | None = None) -> None:
        super().__init__(name=f"ticker-{source.function.logical_id}", daemon=True)
        self.source = source
        self.every = every or source.every
        self.stopping = threading.Event()
        self.runs = 0
        self.last_error: str | None = None

    def run(self) -> None:
        handler = self.source.function.load()
        while not self.stopping.wait(self.every):
            context = LambdaContext(self.source.function.logical_id, self.source.function.timeout)
            try:
                handler({"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}}, context)
            except Exception as error:  # a failed run is retried by the next tick, as in AWS
                self.last_error = f"{type(error).__name__}: {error}"
            self.runs += 1


def point_at(endpoint: str) -> None:
    """Every boto3 client of this process talks to the emulator, with throwaway credentials."""
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",  # noqa: S106 - moto accepts any credentials
        AWS_DEFAULT_REGION=REGION,
        POWERTOOLS_TRACE_DISABLED="true",
    )
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)


class Poller(threading.Thread):
    """Lambda's SQS event source mapping for one queue and function."""

    def __init__(self, source: QueueSource, stack: Any, one_customer_per_batch: bool = False) -> None:
        super().__init__(name=f"poller-{source.queue}", daemon=True)
        self.source = source
        self.stack = stack
        self.one_customer_per_batch = one_customer_per_batch
        self.stopping = threading.Event()
        self.batches = 0
        self.records = 0
        self.failures = 0
        self.last_error: str | None = None

    def run(self) -> None:

        sqs = boto3.client("sqs")
        handler = self.source.function.load()
        url, arn = self.stack.urls[self.source.queue], self.stack.arns[self.source.queue]
        while not self.stopping.is_set():
            try:
                messages = receive_batch(sqs, url, self.source.batch_size, wait_seconds=1)
                if not messages:
                    continue
                response: dict[str, Any] = {"batchItemFailures": []}
                chunks = by_customer(messages) if self.one_customer_per_batch else [messages]
                for number, chunk in enumerate(chunks):
                    if self.stopping.is_set():
                        # Stopping mid-batch: the chunks not started come back later, as the records
                        # of a Lambda cut off would (and are kept with the state, unless ephemeral).
                        for rest in chunks[number:]:
                            response["batchItemFailures"] += [{"itemIdentifier": m["MessageId"]} for m in rest]
                        break
                    context = LambdaContext(self.source.function.logical_id, self.source.function.timeout)
                    try:
                        answer = handler(sqs_event(chunk, arn, REGION), context) or {}
                    except Exception as error:  # a raising handler fails the whole batch, as in Lambda
                        self.last_error = f"{type(error).__name__}: {error}"
                        answer = {"batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in chunk]}
                    response["batchItemFailures"] += answer.get("batchItemFailures", [])
                    if self.one_customer_per_batch:
                        # Under the event clock, what this chunk committed is announced (a held
                        # follow-up scheduled) before the next chunk, a later moment, is decided.
                        log_stream(self.stack).drain()
                acknowledge(sqs, url, messages, response)
                failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
                self.batches += 1
                self.records += len(messages)
                self.failures += len(failed)
                for message in messages:
                    if message["MessageId"] in failed:
                        sqs.change_message_visibility(
                            QueueUrl=url,
                            ReceiptHandle=message["ReceiptHandle"],
                            VisibilityTimeout=RETRY_BACKOFF_SECONDS,
                        )
            except Exception as error:  # the emulator going away while stopping, mostly
                self.last_error = f"{type(error).__name__}: {error}"
                if not self.stopping.is_set():
                    time.sleep(0.5)


def by_customer(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """A batch cut before any customer's second event, in order. Under the event clock a replay
    packs hours of one customer's traffic into one batch; cut like this, each of their events is
    decided after the one before was published (its follow-up scheduled), so the schedules due in
    between run first, as they would have live. Other customers' events never affect a decision."""
    chunks: list[list[dict[str, Any]]] = [[]]
    seen: set[str] = set()
    for message in messages:
        customer = _customer_of(message.get("Body", ""))
        if customer is not None and customer in seen:
            chunks.append([])
            seen = set()
        if customer is not None:
            seen.add(customer)
        chunks[-1].append(message)
    return [c for c in chunks if c]


def _customer_of(body: str) -> str | None:
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        return None
    customer = detail.get("customer_id") if isinstance(detail, dict) else None
    return customer if isinstance(customer, str) else None


@dataclass
class LocalGovernor:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    moto_port: int = 0
    clock: str = "wall"
    log_to: Path | None = LOG_FILE
    console: TextIO = field(default_factory=lambda: sys.stdout)
    resources: Any = None
    pollers: list[Poller] = field(default_factory=list)
    tickers: list[Ticker] = field(default_factory=list)
    schedule_every: float | None = None  # overrides every schedule's period (tests)
    scheduler: ScheduleRunner | None = None
    scheduler_loop: WallScheduleLoop | None = None
    stream_thread: StreamThread | None = None  # Lambda's event source mapping of the log's stream
    simulations: SimulationRunner | None = None  # Step Functions executions (simulation jobs), run here
    simulations_loop: SimulationLoop | None = None
    # API Gateway's IAM authoriser, emulated on moto's IAM (infra/local/authz.py): each role's access key.
    authorizer: Authorizer | None = None
    credentials: dict[str, tuple[str, str]] = field(default_factory=dict)  # "admin", "marketing-ops"
    # Kept across restarts (a snapshot of moto's state in the state directory) or not: the library
    # default is not (tests, benches); `governor local` keeps it unless --ephemeral.
    persist: bool = False
    state_dir: Path | None = None  # default: infra.local.state_file.state_dir()
    restored: dict[str, Any] | None = None  # what start() put back: path, decisions, policy_version
    started_at: datetime | None = None
    _server: ThreadingHTTPServer | None = None
    _moto: Any = None
    _saved_stdout: TextIO | None = None
    _log_file: TextIO | None = None
    _clients: dict[str, Any] = field(default_factory=dict)
    _clients_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def moto_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    def start(self) -> LocalGovernor:
        # Bind the gateway first: a busy port must fail before anything else starts.
        try:
            self._server = _GatewayServer((self.host, self.port), _gateway_handler(self))
        except OSError as error:
            raise PortBusy(
                f"port {self.port} on {self.host} is busy ({error.strerror}); pick another with --port"
            ) from None
        self.port = self._server.server_address[1]
        self.moto_port = self.moto_port or free_port()
        self._moto, _ = emulator.start(self.moto_port)
        point_at(self.moto_endpoint)
        self._capture_function_output()

        self.state_dir = self.state_dir or state_file.state_dir()
        saved = persistence.load(self.snapshot_path) if self.persist else None
        if saved is not None:
            persistence.restore(saved)
            self.resources = saved.resources
            log_stream(self.resources).restore(saved.stream_checkpoints)
        else:
            self.resources = provision(boto3.Session(region_name=REGION))
        self.authorizer, self.credentials = create_role_users(self.client("iam"), self.resources)
        for function in functions():
            os.environ.update(self.resources.environment(function))
        wiring.reset()
        every = functions()
        self.scheduler = ScheduleRunner(
            self.client("scheduler"),
            self.client("sqs"),
            {self.resources.get_att(name, "Arn"): function for name, function in every.items()},
        )
        if self.clock == "event":
            clock = EventClock(before=self.scheduler.run_due)
            self.scheduler.as_of = clock.as_of
            wiring.use_clock(clock)
        else:
            wiring.use_clock(WallClock())
            self.scheduler_loop = WallScheduleLoop(self.scheduler, every=min(self.schedule_every or 1.0, 1.0))
            self.scheduler_loop.start()
        # moto starts executions but runs none: each simulation job runs here, its partitions in a process pool.
        self.simulations = for_stack(self.resources, every, str(self.log_to) if self.log_to else None)
        if self.simulations is not None:
            self.simulations_loop = SimulationLoop(self.simulations)
            self.simulations_loop.start()
        self.stream_thread = StreamThread(log_stream(self.resources))
        self.stream_thread.start()
        self.pollers = [Poller(source, self.resources, self.clock == "event") for source in queue_sources()]
        for poller in self.pollers:
            poller.start()
        self.tickers = [Ticker(source, self.schedule_every) for source in scheduled_sources()]
        for ticker in self.tickers:
            ticker.start()
        threading.Thread(target=self._server.serve_forever, name="gateway", daemon=True).start()
        if saved is not None:
            self.restored = {"path": str(self.snapshot_path), **self._contents()}
        self.started_at = datetime.now(UTC)
        state_file.write(self.address())
        return self

    @property
    def snapshot_path(self) -> Path:
        return persistence.snapshot_path(self.state_dir or state_file.state_dir())

    def address(self) -> state_file.LocalAddress:
        return state_file.LocalAddress(
            url=self.url,
            moto_endpoint=self.moto_endpoint,
            pid=os.getpid(),
            started_at=(self.started_at or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
            clock=self.clock,
            state="persistent" if self.persist else "ephemeral",
            state_dir=str(self.state_dir or state_file.state_dir()),
        )

    @property
    def state_note(self) -> str:
        """One line saying whether what happens in this session is kept."""
        if not self.persist:
            return "state: ephemeral, nothing is kept"
        if self.restored is None:
            return f"state: new, kept in {self.snapshot_path} when stopped (--ephemeral: keep nothing)"
        return (
            f"state: restored from {self.restored['path']} ({self.restored['decisions']} decisions, "
            f"policy v{self.restored['policy_version']})"
        )

    def _contents(self) -> dict[str, int]:
        """How many decisions the log holds, and the current policy version."""
        dynamodb, decisions = self.client("dynamodb"), 0
        pages = dynamodb.get_paginator("scan").paginate(
            TableName=self.resources.names["DecisionLogTable"],
            Select="COUNT",
            FilterExpression="begins_with(#k, :decision)",
            ExpressionAttributeNames={"#k": decision_log.KEY},
            ExpressionAttributeValues={":decision": {"S": "dcn_"}},
        )
        for page in pages:
            decisions += int(page["Count"])
        policy = PolicyStore(self.resources.names["PolicyTable"], client=dynamodb).current()
        return {"decisions": decisions, "policy_version": int(policy.version)}

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stopping.set()
        for ticker in self.tickers:
            ticker.stopping.set()
        if self.scheduler_loop:
            self.scheduler_loop.stopping.set()
        if self.simulations_loop:
            self.simulations_loop.stopping.set()
            self.simulations_loop.join(timeout=5)
        if self.simulations:
            self.simulations.close()
        if self.stream_thread:
            self.stream_thread.stopping.set()
            self.stream_thread.join(timeout=5)
        for worker in [*self.pollers, *self.tickers, *([self.scheduler_loop] if self.scheduler_loop else [])]:
            worker.join(timeout=5)
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        if self.persist and self.resources is not None and self._moto:
            # Nothing writes to moto any more: the snapshot is consistent with the checkpoints.
            try:
                persistence.save(self.snapshot_path, self.resources, log_stream(self.resources).checkpoints())
            except Exception as error:  # the previous snapshot stays whole (written by rename)
                print(f"governor local: the state was not saved ({type(error).__name__}: {error})", file=sys.stderr)
        if self._moto:
            self._moto.stop()
        state_file.remove_if_ours(os.getpid())
        self._clients.clear()
        if self._saved_stdout is not None:
            sys.stdout = self._saved_stdout
        if self._log_file:
            self._log_file.close()

        wiring.reset()

    def _capture_function_output(self) -> None:
        """What the functions print (Powertools JSON logs, EMF metrics: CloudWatch's part in
        Lambda) goes to a file; the console keeps the stack's own messages."""
        if self.log_to is None:
            return
        self.log_to.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log_to.open("a")
        self._saved_stdout = sys.stdout
        sys.stdout = self._log_file

    def client(self, service: str) -> Any:
        """The stack's own clients, made once: /health is polled while draining, and a new boto3
        client costs more than the requests it makes."""
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = boto3.client(service)
            return self._clients[service]

    def queue_depths(self) -> dict[str, dict[str, int]]:
        sqs = self.client("sqs")
        depths = {}
        for logical, url in self.resources.urls.items():
            attributes = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            depths[logical] = {
                "visible": int(attributes["ApproximateNumberOfMessages"]),
                "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
            }
        return depths

    def health(self) -> tuple[int, dict[str, Any]]:
        report: dict[str, Any] = {"moto": {"endpoint": self.moto_endpoint}, "clock": self.clock}
        try:
            depths = self.queue_depths()
            report["moto"]["up"] = True
        except Exception as error:
            report["moto"].update(up=False, error=type(error).__name__)
            return 503, {"status": "down", **report}
        present = self._resources_present()
        pollers = {
            p.source.queue: {
                "alive": p.is_alive(),
                "batches": p.batches,
                "records": p.records,
                "failed_records": p.failures,
                "last_error": p.last_error,
            }
            for p in self.pollers
        }
        if self.stream_thread is not None:
            for stream in log_stream(self.resources).pollers:
                pollers[f"DecisionLogTable/stream/{stream.source.function}"] = {
                    "alive": self.stream_thread.is_alive(),
                    "batches": stream.batches,
                    "records": stream.records,
                    "failed_batches": stream.failed_batches,
                    "parked_batches": stream.parked,
                    "last_error": stream.last_error,
                }
        healthy = all(present.values()) and all(p["alive"] for p in pollers.values())
        report.update(resources=present, names=dict(self.resources.names), pollers=pollers, queues=depths)
        if self.scheduler is not None:
            report["scheduler"] = {
                "fired": self.scheduler.runs,
                "failed_runs": self.scheduler.failures,
                "dead_lettered": self.scheduler.dead_lettered,
                "last_error": self.scheduler.last_error,
            }
        if self.simulations is not None:
            runs = list(self.simulations.runs.values())
            report["state_machines"] = {
                "executions": len(runs),
                "succeeded": sum(r.status == "SUCCEEDED" for r in runs),
                "failed": sum(r.status == "FAILED" for r in runs),
                "last_error": self.simulations.last_error,
            }
        return (200 if healthy else 503), {"status": "ok" if healthy else "degraded", **report}

    def advance(self, to: datetime) -> dict[str, int]:
        """Fires every schedule due by `to` (event clock), and counts what became of each follow-up."""
        assert self.scheduler is not None
        fired, failed = self.scheduler.run_due_counting_failures(to)
        counts = {"released": 0, "cancelled": 0, "failed": failed}
        for run in fired:
            answer = run.answer or {}
            if answer.get("changed") and answer.get("state") in ("released", "cancelled"):
                counts[answer["state"]] += 1  # a firing that found it settled already counts nothing
        return counts

    def _resources_present(self) -> dict[str, bool]:
        dynamodb, events = self.client("dynamodb"), self.client("events")
        tables = set(dynamodb.list_tables()["TableNames"])
        buses = {b["Name"] for b in events.list_event_buses()["EventBuses"]}
        depths = self.queue_depths()
        present = {}
        for logical, kind in self.resources.types.items():
            name = self.resources.names[logical]
            if kind == "AWS::DynamoDB::Table":
                present[logical] = name in tables
            elif kind == "AWS::Events::EventBus":
                present[logical] = name in buses
            elif kind == "AWS::SQS::Queue":
                present[logical] = logical in depths
            else:
                present[logical] = True
        return present

    def drained(self) -> bool:
        depths = self.queue_depths()
        queues = all(depths[s.queue]["visible"] == 0 and depths[s.queue]["in_flight"] == 0 for s in queue_sources())
        return queues and log_stream(self.resources).caught_up()

    def wait_drained(self, timeout: float = 120.0, settle: float = 0.3) -> bool:
        """True once every polled queue is empty and the log's stream handled, twice in a row
        (EventBridge delivery is synchronous in moto, so an empty queue after the puts means
        everything was decided, and a stream read to its end means everything was published)."""
        deadline = time.monotonic() + timeout
        calm = 0
        while time.monotonic() < deadline:
            calm = calm + 1 if self.drained() else 0
            if calm >= 2:
                return True
            time.sleep(settle)
        return False


def advance_answer(stack: LocalGovernor, body: str | None) -> tuple[int, dict[str, Any]]:
    """POST /local/advance {"to": RFC 3339}: local only, so it lives here and not in the template."""
    if stack.clock != "event":
        return 409, {
            "code": "WALL_CLOCK",
            "message": "the wall clock fires schedules as they fall due; start with --clock event to advance time",
            "fields": [],
        }
    try:
        payload = json.loads(body or "null")
        to = datetime.fromisoformat(str(payload["to"]).replace("Z", "+00:00"))
        if to.tzinfo is None:
            raise ValueError("no offset")
    except (ValueError, TypeError, KeyError):
        return 400, {
            "code": "INVALID_INPUT",
            "message": 'send {"to": "<RFC 3339 time with offset>"}, e.g. {"to": "2026-01-02T09:00:00Z"}',
            "fields": [{"field": "to", "message": "must be an RFC 3339 time with an offset"}],
        }
    return 200, stack.advance(to.astimezone(UTC))


def _gateway_handler(stack: LocalGovernor) -> type[BaseHTTPRequestHandler]:
    table = routes()
    # Each function is loaded once in this process: one Lambda instance, which never runs two
    # invocations at once. Its module state (Powertools' resolver keeps the current event on the
    # app) would otherwise be shared by concurrent requests, e.g. a page's parallel API calls.
    instances = {route.function.logical_id: threading.Lock() for route in table}

    class Gateway(BaseHTTPRequestHandler):
        server_version = "governor-local"
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; without this a kept-alive client waits ~40 ms
        # (Nagle's algorithm against its delayed ACK) on every answer.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the gateway is quiet; function logs go to the log file

        def do_GET(self) -> None:
            self._dispatch()

        def do_POST(self) -> None:
            self._dispatch()

        def do_PUT(self) -> None:
            self._dispatch()

        def do_DELETE(self) -> None:
            self._dispatch()

        def do_PATCH(self) -> None:
            self._dispatch()

        def _dispatch(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""  # as signed: SigV4 hashes the bytes
            body = raw.decode("utf-8", errors="replace") if length else None
            asset = console_http.asset(parsed.path) if self.command == "GET" else None
            if asset is not None:  # the console's page and files (infra/local/console_http.py)
                return self._send(*asset)
            if self.command == "GET" and parsed.path == "/health":
                status, report = stack.health()
                return self._send(status, {"Content-Type": "application/json"}, json.dumps(report))
            if self.command == "POST" and parsed.path == "/local/advance":
                status, answer = advance_answer(stack, body)
                return self._send(status, {"Content-Type": "application/json"}, json.dumps(answer))
            for route in table:
                match = route.pattern.match(parsed.path)
                if match and route.method in (self.command, "ANY"):
                    # A signed request is verified and authorised as API Gateway's IAM authoriser would.
                    headers = dict(self.headers.items())
                    caller = stack.authorizer.check(self.command, self.path, headers, raw) if stack.authorizer else None
                    if isinstance(caller, Refusal):
                        return self._send(*caller.answer())
                    return self._invoke(route, parsed, match.groupdict(), body, caller)
            allowed = sorted({r.method for r in table if r.pattern.match(parsed.path)})
            if allowed:
                message = {"code": "METHOD_NOT_ALLOWED", "message": f"{parsed.path} accepts {', '.join(allowed)}"}
                return self._send(
                    405, {"Content-Type": "application/json", "Allow": ", ".join(allowed)}, json.dumps(message)
                )
            message = {"code": "NOT_FOUND", "message": f"no route {self.command} {parsed.path}"}
            return self._send(404, {"Content-Type": "application/json"}, json.dumps(message))

        def _invoke(
            self, route: Route, parsed: Any, params: dict[str, str], body: str | None, caller: Caller | None = None
        ) -> None:
            query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
            event = api_gateway_event(
                self.command,
                parsed.path,
                resource=route.path,
                path_parameters={k: urllib.parse.unquote(v) for k, v in params.items()},
                query=query,
                headers={k: v for k, v in self.headers.items()},
                body=body,
                source_ip=self.client_address[0],
            )
            if caller is not None:  # who API Gateway verified, as the deployed functions see it
                event["requestContext"]["identity"].update(userArn=caller.user_arn, accessKey=caller.access_key)
            context = LambdaContext(route.function.logical_id, route.function.timeout)
            try:
                with instances[route.function.logical_id]:
                    answer = route.function.load()(event, context)
            except Exception:  # API Gateway answers 502 when the integration fails
                logging.getLogger("governor.local").exception("handler raised")
                message = {"code": "INTERNAL", "message": "the function failed; see .local/functions.log"}
                return self._send(502, {"Content-Type": "application/json"}, json.dumps(message))
            headers = dict(answer.get("headers") or {})
            for name, values in (answer.get("multiValueHeaders") or {}).items():
                headers[name] = ", ".join(values)
            return self._send(int(answer.get("statusCode", 200)), headers, answer.get("body") or "")

        def _send(self, status: int, headers: dict[str, str], body: str | bytes) -> None:
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status, HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "")
            for name, value in headers.items():
                if name.lower() not in ("content-length", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Gateway


@contextmanager
def running(**options: Any) -> Iterator[LocalGovernor]:
    stack = LocalGovernor(**options).start()
    try:
        yield stack
    finally:
        stack.stop()
